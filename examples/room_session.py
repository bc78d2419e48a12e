#!/usr/bin/python3
"""Talk to modman in a MUC room, as a team member or a chat-ops bot would.

    room_session.py --jid admin@example.org --password PW \
        --server 127.0.0.1:5222 --room ops@conference.example.org \
        --nick alice "modman: list installed" "modman: install lastlog"

Each line is said in the room in turn; modman's answer is awaited and the
conversation printed. With --create, a room that does not exist yet is
created non-anonymous (modman only acts for people whose real JID it can
see), and nothing is said. Run with /usr/bin/python3.
"""
import argparse
import asyncio
import logging
import sys

import slixmpp


class RoomSession(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.exit_code = 1
        self.answers = asyncio.Queue()
        for plugin in ("xep_0004", "xep_0030", "xep_0045"):
            self.register_plugin(plugin)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("groupchat_message", self.on_groupchat)

    def on_groupchat(self, message):
        if message["from"].resource == self.args.modman_nick and not message["delay"]["stamp"]:
            self.answers.put_nowait(message["body"])

    async def start(self, _):
        muc = self["xep_0045"]
        room, nick = self.args.room, self.args.nick
        try:
            presence = (await muc.join_muc_wait(room, nick, maxstanzas=0, timeout=20))[0]
            codes = {int(c) for c in presence["muc"]["status_codes"]}
            if 201 in codes:
                form = self["xep_0004"].make_form(ftype="submit")
                form.add_field(var="FORM_TYPE", value="http://jabber.org/protocol/muc#roomconfig")
                form.add_field(var="muc#roomconfig_whois", value="anyone")
                form.add_field(var="muc#roomconfig_persistentroom", value="1")
                await muc.set_room_config(room, form)
                print("created the non-anonymous room %s" % room)
            for line in self.args.lines:
                print("<%s> %s" % (nick, line))
                self.send_message(mto=room, mbody=line, mtype="groupchat")
                answer = await asyncio.wait_for(self.answers.get(), 60)
                for i, text in enumerate(answer.split("\n")):
                    print(("<%s> %s" % (self.args.modman_nick, text)) if i == 0 else "    " + text)
            self.exit_code = 0
        except asyncio.TimeoutError:
            print("error: no answer from %s in %s; is it in the room?" % (self.args.modman_nick, room),
                  file=sys.stderr)
        self.disconnect()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--server", required=True, help="host:port of the c2s listener")
    parser.add_argument("--room", required=True)
    parser.add_argument("--nick", required=True)
    parser.add_argument("--modman-nick", default="modman")
    parser.add_argument("--create", action="store_true", help="create the room if needed, say nothing")
    parser.add_argument("lines", nargs="*", help="what to say, in order")
    args = parser.parse_args()
    if args.create:
        args.lines = []
    logging.basicConfig(level=logging.ERROR)
    host, _, port = args.server.rpartition(":")
    session = RoomSession(args)
    plain = host in ("127.0.0.1", "localhost", "::1")
    session.connect((host, int(port)), disable_starttls=plain, force_starttls=not plain)
    asyncio.get_event_loop().run_until_complete(session.disconnected)
    sys.exit(session.exit_code)


if __name__ == "__main__":
    main()
