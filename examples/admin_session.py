#!/usr/bin/python3
"""Run modman commands over XMPP from a script, as any bot could.

    admin_session.py --jid admin@example.org --password PW \
        --server 127.0.0.1:5222 --component modman.example.org \
        commands                      # what may I run?
    admin_session.py ... list query=smacks
    admin_session.py ... install modules=cloud_notify modules=smacks
    admin_session.py ... --yes remove modules=smacks

It uses slixmpp's XEP-0050 plugin: executes the command, fills the form
it is shown with the given field=value pairs (a field given twice becomes
a list), submits it and prints the result. When modman asks a question
before a change, it prints it and answers yes with --yes, no otherwise.
Exit status 0 on success, 1 when modman answers with an error. Run with
/usr/bin/python3.
"""
import argparse
import asyncio
import logging
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout


def print_result(form):
    """A table (reported + items) or labelled values, as plain text."""
    if form["reported"]:
        print_table(form)
        return
    for field in form["fields"] if isinstance(form["fields"], list) else form.get_fields().values():
        values = field.get_value(convert=False)
        values = values if isinstance(values, list) else [values]
        if len(values) > 1:
            print("%s:" % field["label"])
            for value in values:
                print("  " + value)
        else:
            print("%s: %s" % (field["label"], values[0] if values else ""))


def print_table(form):
    columns = list(form["reported"].keys())
    labels = [form["reported"][c]["label"] or c for c in columns]
    rows = [[item.get(c, "") for c in columns] for item in form["items"]]
    widths = [max(len(str(x)) for x in [label] + [r[i] for r in rows])
              for i, label in enumerate(labels)]
    for row in [labels] + rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


class Session(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.exit_code = 1
        for plugin in ("xep_0004", "xep_0030", "xep_0050"):
            self.register_plugin(plugin)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", self.failed)

    def failed(self, _):
        print("error: %s could not log in" % self.args.jid, file=sys.stderr)
        self.disconnect()

    async def start(self, _):
        try:
            await self.run_command()
        except IqError as e:
            err = e.iq["error"]
            print("error: %s: %s" % (err["condition"], err["text"]), file=sys.stderr)
        except IqTimeout:
            print("error: no answer from %s; is modman running?" % self.args.component,
                  file=sys.stderr)
        self.disconnect()

    async def run_command(self):
        adhoc, to = self["xep_0050"], self.args.component
        if self.args.command == "commands":
            reply = await adhoc.get_commands(jid=to, timeout=20)
            items = reply["disco_items"]["items"]
            for _, node, name in items:
                print("%-10s %s" % (node, name))
            if not items:
                print("(no commands for %s)" % self.args.jid)
            self.exit_code = 0
            return
        reply = await adhoc.send_command(to, self.args.command, timeout=60)
        values = {}
        for pair in self.args.fields:
            var, _, value = pair.partition("=")
            values.setdefault(var, []).append(value)
        answered = False
        while reply["command"]["status"] == "executing":
            form = self["xep_0004"].make_form(ftype="submit")
            asked = reply["command"]["form"]
            if "confirm" in asked.get_fields() and not answered:
                # A question before a change: show it, answer it.
                print(asked["instructions"])
                print("> %s" % ("yes" if self.args.yes else "no"))
                form.add_field(var="confirm", value="1" if self.args.yes else "0")
                answered = True
            elif not answered and values is not None:
                for var, vals in values.items():
                    form.add_field(var=var, value=vals if len(vals) > 1 else vals[0])
                values = None
            else:
                break
            reply = await adhoc.send_command(
                to, self.args.command, action="complete", payload=form,
                sessionid=reply["command"]["sessionid"], timeout=300)
        command = reply["command"]
        if command.xml.find("{jabber:x:data}x") is not None:
            form = command["form"]
            if form["type"] == "result":
                print_result(form)
        for kind, text in command["notes"]:
            print(text if kind == "info" else "%s: %s" % (kind, text))
        self.exit_code = 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--server", required=True, help="host:port of the c2s listener")
    parser.add_argument("--component", required=True, help="modman's JID")
    parser.add_argument("--yes", action="store_true", help="answer yes when modman asks before a change")
    parser.add_argument("command", help="'commands', or a command node such as list")
    parser.add_argument("fields", nargs="*", help="field=value")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    host, _, port = args.server.rpartition(":")
    session = Session(args)
    # Plain TCP is for the loopback demo; a real server offers STARTTLS.
    plain = host in ("127.0.0.1", "localhost", "::1")
    session.connect((host, int(port)), disable_starttls=plain, force_starttls=not plain)
    asyncio.get_event_loop().run_until_complete(session.disconnected)
    sys.exit(session.exit_code)


if __name__ == "__main__":
    main()
