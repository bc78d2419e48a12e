#!/usr/bin/python3
"""A test client driven over stdin/stdout with one JSON object per line.

It is slixmpp, an XMPP implementation independent of modman, so the tests
check interoperability rather than assume it. Requests:

  {"op": "iq", "xml": "<iq .../>"}            send raw, answer {"xml": reply}
  {"op": "send", "xml": "<message .../>"}     send raw, answer {"sent": true}
  {"op": "commands", "to": JID}               XEP-0050 command list
  {"op": "run", "to": JID, "node": N,         execute, then submit one form per
   "steps": [{var: value or [values]}, ...]}  step while the command asks; every
                                              reply in "steps"
  {"op": "chat", "to": JID, "body": B}        chat message; answer the next
                                              message from JID: {"body": ...,
                                              "json": its XEP-0335 facts if any}
  {"op": "join", "room": R, "nick": N,        join a room (configured with
   "whois": "anyone"|"moderators",            that whois if we create it, and,
   "broadcast": [ROLE...]}                    if given, presence broadcast only
                                              for those roles)
  {"op": "say", "room": R, "body": B,         groupchat message (optionally
   "delay": bool}                             carrying a <delay/>)
  {"op": "next", "room": R, "nick": N,        the next groupchat message from
   "timeout": S}                              R/N: {"body": ...} or {"timeout": true}
  {"op": "occupant", "room": R, "nick": N}    wait until R/N is in the room
  {"op": "absent", "room": R, "nick": N}      wait until R/N has left the room
  {"op": "flood", "to": JID, "body": B,       send B N times at once; answer the
   "count": N}                                bodies of the next N replies
  {"op": "kick", "room": R, "nick": N}        kick N (as a moderator)
  {"op": "flood_iq", "to": JID, "count": N}   N disco#info requests at once;
                                              answer each reply's type or error
  {"op": "presences", "to": JID,              send a presence of that type to JID;
   "type": T, "count": N}                     answer the types of the next N
                                              presences from JID: {"types": [...]}
  {"op": "next_chat", "from": JID}           the next chat message from JID:
                                              {"body": ...} or {"timeout": true}
  {"op": "raw", "xml": X, "id": ID}          send X as it is (no parsing: it may be
                                              deeper than Python's parser goes);
                                              answer the IQ with that id: {"xml": ...}
  {"op": "blast", "to": JID, "count": N,      send N chat lines B to JID (and M
   "body": B, "room": R, "room_count": M,     lines RB to room R; S a second if
   "room_body": RB, "per_second": S}          given, else at once), then ask JID
                                              disco#info until it answers, so all
                                              before was read; answer how many
                                              chat messages came from JID
  {"op": "count_from", "room": R, "nick": N}  how many groupchat messages from R/N
                                              arrived and were not yet taken
  {"op": "quit"}

Every answer is one JSON line. Run with /usr/bin/python3 (Debian's
python3-slixmpp): xmpp_client.py JID PASSWORD HOST PORT [NAME VERSION CAPS_NODE
[FEATURE...]] where the optional three are what it says it is (XEP-0092,
XEP-0115 caps and its disco#info identity) and the features what else its
disco#info announces; by default it is slixmpp. A client named Gajim tells
its version, as Gajim does, only to contacts it shares its presence with.
"""
import asyncio
import json
import logging
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

COMMANDS_NS = "http://jabber.org/protocol/commands"


def error_of(iq):
    """The parts of an error reply a test asserts on."""
    err = iq["error"]
    app = [child.tag.split("}")[1] for child in err.xml
           if child.tag.startswith("{%s}" % COMMANDS_NS)]
    return {"type": err["type"], "condition": err["condition"],
            "text": err["text"], "app_condition": app[0] if app else None}


def failure_of(step):
    """A failed command's facts, from the completed form that says so
    (outcome 'failed'), in the shape of a stanza error's; None otherwise."""
    values = step.get("form", {}).get("values", {})
    if step["status"] != "completed" or values.get("outcome") != "failed":
        return None
    # The account is in short lines; as one text, as a stanza error has it.
    text = " ".join((values.get("text") or "").split("\n"))
    # The condition is a hidden field, which slixmpp reads as a list.
    condition = values.get("condition")
    if isinstance(condition, list):
        condition = condition[0] if condition else None
    return {"type": None, "condition": condition,
            "text": text, "app_condition": None, "in_form": True}


def command_of(iq):
    """The parts of a command reply a test asserts on."""
    cmd = iq["command"]
    out = {"status": cmd["status"], "sessionid": cmd["sessionid"],
           "notes": [list(n) for n in cmd["notes"]],
           "actions": list(cmd["actions"])}
    if cmd.xml.find("{jabber:x:data}x") is not None:
        form = cmd["form"]
        out["form"] = {
            "type": form["type"], "title": form["title"],
            "instructions": form["instructions"],
            "fields": [f["var"] for f in form["fields"]] if isinstance(form["fields"], list)
            else list(form.get_fields().keys()),
            "reported": list(form["reported"].keys()),
            "items": [dict((k, v) for k, v in item.items()) for item in form["items"]],
            "values": dict((var, field.get_value()) for var, field in form.get_fields().items()),
            "types": dict((var, field["type"]) for var, field in form.get_fields().items()),
        }
    return out


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, software):
        super().__init__(jid, password)
        self.register_plugin("xep_0004")
        self.register_plugin("xep_0030")
        if software:
            name, version, caps_node = software[:3]
            self.register_plugin("xep_0092", pconfig={"name": name, "version": version})
            self.register_plugin("xep_0115", pconfig={"caps_node": caps_node})
            self.add_event_handler("session_bind", lambda _: self.announce(name, software[3:]))
            if name == "Gajim":
                self.version_to_contacts_only()
        else:
            self.register_plugin("xep_0092")
        self.register_plugin("xep_0050")
        self.register_plugin("xep_0045")
        self.inbox = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.register_handler(slixmpp.xmlstream.handler.Callback(
            "all presences", slixmpp.xmlstream.matcher.StanzaPath("presence"),
            lambda p: self.presences.put_nowait(p)))
        self.add_event_handler("message", lambda m: self.inbox.put_nowait(m))
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _: self.finish({"error": "authentication failed"}))
        self.add_event_handler("disconnected", lambda _: self.finish({"error": "disconnected"}))

    def announce(self, name, features):
        """What its disco#info says, once its full JID is known."""
        self["xep_0030"].add_identity(category="client", itype="pc", name=name)
        for feature in features:
            self["xep_0030"].add_feature(feature)

    def version_to_contacts_only(self):
        """Answers XEP-0092 as Gajim does: forbidden unless the asker is a
        contact with subscription from or both."""
        answer = self["xep_0092"]._handle_version

        def contacts_only(iq):
            if self.client_roster[iq["from"].bare]["subscription"] in ("from", "both"):
                answer(iq)
                return
            refusal = iq.reply().error()
            refusal["error"]["type"] = "auth"
            refusal["error"]["condition"] = "forbidden"
            refusal.send()

        self.answer_versions_with(contacts_only)

    def answer_versions_with(self, handler):
        """Hands each XEP-0092 query to `handler` instead of the plugin's
        own answer."""
        self.remove_handler("Software Version")
        self.register_handler(slixmpp.xmlstream.handler.Callback(
            "Software Version",
            slixmpp.xmlstream.matcher.StanzaPath("iq@type=get/software_version"),
            handler))

    def hold_versions(self):
        """Keeps each XEP-0092 query unanswered until release_versions, as
        a client slow to answer (or a link slow to carry it) would."""
        self.held_versions = []
        self.answer_version = self["xep_0092"]._handle_version
        self.answer_versions_with(self.held_versions.append)

    def release_versions(self):
        """Answers the queries held, and those to come at once."""
        self.answer_versions_with(self.answer_version)
        held, self.held_versions = self.held_versions, []
        for iq in held:
            self.answer_version(iq)
        return {"released": len(held)}

    def finish(self, value):
        if not self.ready.done():
            self.ready.set_result(value)

    async def on_start(self, _):
        self.send_presence()
        self.finish({"ready": True})

    def nudge(self, text):
        """Prosody 13 on Debian 13 parses with expat 2.7, whose reparse
        deferral (the fix for CVE-2023-52425) holds back a long token until
        the bytes waiting have doubled, so a stanza with a long attribute is
        handled only once the client has sent about as much again. After
        one, small pings (no long token of their own) of twice its length
        make Prosody handle it now, as a client's later traffic would."""
        size = len(text.encode())
        if size > 8000:
            ping = "<iq type='get' id='nudge' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % self.boundjid.domain
            # Through the send queue, so it follows the stanza.
            self.send(ping * (2 * size // len(ping) + 1), use_filters=False)

    async def raw(self, text, id_):
        answered = asyncio.get_event_loop().create_future()
        self.register_handler(slixmpp.xmlstream.handler.Callback(
            "raw " + id_, slixmpp.xmlstream.matcher.MatcherId(id_),
            lambda iq: answered.done() or answered.set_result(iq), once=True))
        self.send_raw(text)
        self.nudge(text)
        try:
            # Long enough for Prosody itself to parse and route a stanza
            # built to be slow (210 KB nested 30,000 deep) on a loaded
            # machine; a bound on a hang, not a measure.
            reply = await asyncio.wait_for(answered, 60)
        except asyncio.TimeoutError:
            return {"timeout": True}
        return {"xml": str(reply)}

    async def blast(self, to, count, body, room, room_count, room_body, per_second=None):
        for sent in range(1, count + 1):
            self.send_message(mto=to, mbody=body, mtype="chat")
            if per_second and sent % max(1, per_second // 10) == 0:
                await asyncio.sleep(0.1)
        for _ in range(room_count):
            self.send_message(mto=room, mbody=room_body, mtype="groupchat")
        # Prosody hands modman one sender's stanzas in order: an answer to
        # a request sent after them means modman has read them all. Asked
        # again until its budget lets one through.
        read = False
        for _ in range(60):
            iq = self.make_iq_get(queryxmlns="http://jabber.org/protocol/disco#info", ito=to)
            try:
                await iq.send(timeout=2)
                read = True
                break
            except IqError:
                read = True
                break
            except IqTimeout:
                continue
        bare = slixmpp.JID(to).bare
        replies = 0
        while not self.inbox.empty():
            message = self.inbox.get_nowait()
            if message["from"].bare == bare and message["type"] != "groupchat":
                replies += 1
        return {"replies": replies, "read": read}

    def count_from(self, room, nick):
        count = 0
        kept = []
        while not self.inbox.empty():
            message = self.inbox.get_nowait()
            if message["type"] == "groupchat" and message["from"].bare == room and message["from"].resource == nick:
                count += 1
            else:
                kept.append(message)
        for message in kept:
            self.inbox.put_nowait(message)
        return {"count": count}

    def send_iq(self, text):
        """Sends the IQ written in `text`; returns a task whose result is
        its reply as the harness reads it (an error reply too)."""
        wrapper = ET.fromstring("<w xmlns='jabber:client'>%s</w>" % text)
        sent = self.Iq(xml=wrapper[0]).send(timeout=20)
        self.nudge(text)

        async def reply():
            try:
                return {"xml": str(await sent)}
            except IqError as e:
                return {"xml": str(e.iq)}
            except IqTimeout:
                return {"timeout": True}

        return asyncio.ensure_future(reply())

    async def commands(self, to):
        reply = await self["xep_0050"].get_commands(jid=to, timeout=20)
        return {"items": [[i[1], i[2]] for i in reply["disco_items"]["items"]]}

    async def run(self, to, node, steps):
        adhoc = self["xep_0050"]
        try:
            # A bound on a hang, not a measure: a refresh of a 20,000-module
            # index in a debug build on a loaded 2-core machine takes tens
            # of seconds.
            reply = await adhoc.send_command(to, node, action="execute", timeout=120)
            result = {"steps": [command_of(reply)]}
            for fields in steps:
                if reply["command"]["status"] != "executing":
                    break
                form = self["xep_0004"].make_form(ftype="submit")
                for var, value in fields.items():
                    if isinstance(value, bool):
                        value = "1" if value else "0"
                    form.add_field(var=var, value=value)
                reply = await adhoc.send_command(
                    to, node, action="complete", payload=form,
                    sessionid=reply["command"]["sessionid"], timeout=120)
                result["steps"].append(command_of(reply))
            failure = failure_of(result["steps"][-1])
            if failure is not None:
                result["error"] = failure
            return result
        except IqError as e:
            return {"error": error_of(e.iq)}


    async def next_message(self, match, timeout=20):
        """The next message for which match(message) holds; others are dropped."""
        loop = asyncio.get_event_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return {"timeout": True}
            try:
                message = await asyncio.wait_for(self.inbox.get(), left)
            except asyncio.TimeoutError:
                return {"timeout": True}
            if match(message):
                answer = {"body": message["body"], "type": message["type"]}
                # The same facts as JSON (XEP-0335), when modman sent them.
                facts = message.xml.find("{urn:xmpp:json:0}json")
                if facts is not None:
                    answer["json"] = json.loads(facts.text)
                return answer

    async def chat(self, to, body):
        self.send_message(mto=to, mbody=body, mtype="chat")
        bare = slixmpp.JID(to).bare
        return await self.next_message(lambda m: m["from"].bare == bare and m["type"] != "groupchat")

    async def join(self, room, nick, whois, broadcast=None):
        muc = self["xep_0045"]
        presence = (await muc.join_muc_wait(room, nick, maxstanzas=0, timeout=20))[0]
        codes = {int(s) for s in presence["muc"]["status_codes"]} if presence["muc"]["status_codes"] else set()
        if 201 in codes:
            form = await muc.get_room_config(room)
            submit = self["xep_0004"].make_form(ftype="submit")
            submit.add_field(var="FORM_TYPE", value="http://jabber.org/protocol/muc#roomconfig")
            submit.add_field(var="muc#roomconfig_whois", value=whois)
            submit.add_field(var="muc#roomconfig_persistentroom", value="1")
            if broadcast is not None:
                submit.add_field(var="muc#roomconfig_presencebroadcast", value=broadcast, ftype="list-multi")
            await muc.set_room_config(room, submit)
        return {"joined": True}

    def say(self, room, body, delay):
        message = self.make_message(mto=room, mbody=body, mtype="groupchat")
        if delay:
            stamp = ET.fromstring("<delay xmlns='urn:xmpp:delay' from='%s' stamp='2020-01-01T00:00:00Z'/>"
                                  % self.boundjid.bare)
            message.append(stamp)
        message.send()
        return {"sent": True}

    async def occupant(self, room, nick):
        muc = self["xep_0045"]
        for _ in range(400):
            if nick in muc.get_roster(room):
                return {"present": True}
            await asyncio.sleep(0.05)
        return {"timeout": True}

    async def absent(self, room, nick):
        muc = self["xep_0045"]
        for _ in range(400):
            if nick not in muc.get_roster(room):
                return {"absent": True}
            await asyncio.sleep(0.05)
        return {"timeout": True}


async def main():
    logging.basicConfig(level=logging.ERROR)
    jid, password, host, port = sys.argv[1:5]
    client = Client(jid, password, sys.argv[5:] if len(sys.argv) >= 8 else None)
    client.connect((host, int(port)), disable_starttls=True, force_starttls=False)
    print(json.dumps(await client.ready), flush=True)
    loop = asyncio.get_event_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or not line.strip():
            break
        request = json.loads(line)
        op = request["op"]
        if op == "quit":
            break
        try:
            if op == "iq":
                answer = await client.send_iq(request["xml"])
            elif op == "raw":
                answer = await client.raw(request["xml"], request["id"])
            elif op == "blast":
                answer = await client.blast(request["to"], request["count"], request["body"],
                                            request.get("room"), request.get("room_count", 0),
                                            request.get("room_body", ""), request.get("per_second"))
            elif op == "count_from":
                answer = client.count_from(request["room"], request["nick"])
            elif op == "hold_versions":
                client.hold_versions()
                answer = {"holding": True}
            elif op == "held_versions":
                answer = {"held": len(client.held_versions)}
            elif op == "release_versions":
                answer = client.release_versions()
            elif op == "iq_later":
                client.later = client.send_iq(request["xml"])
                answer = {"sent": True}
            elif op == "iq_reply":
                answer = await client.later
            elif op == "send":
                client.send_raw(request["xml"])
                client.nudge(request["xml"])
                answer = {"sent": True}
            elif op == "chat":
                answer = await client.chat(request["to"], request["body"])
            elif op == "join":
                answer = await client.join(request["room"], request["nick"], request.get("whois", "anyone"),
                                           request.get("broadcast"))
            elif op == "say":
                answer = client.say(request["room"], request["body"], request.get("delay", False))
            elif op == "next":
                room, nick = request["room"], request["nick"]
                answer = await client.next_message(
                    lambda m: m["type"] == "groupchat" and m["from"].bare == room and m["from"].resource == nick,
                    request.get("timeout", 20))
            elif op == "occupant":
                answer = await client.occupant(request["room"], request["nick"])
            elif op == "absent":
                answer = await client.absent(request["room"], request["nick"])
            elif op == "flood":
                bare = slixmpp.JID(request["to"]).bare
                for _ in range(request["count"]):
                    client.send_message(mto=request["to"], mbody=request["body"], mtype="chat")
                bodies = []
                for _ in range(request["count"]):
                    got = await client.next_message(lambda m: m["from"].bare == bare and m["type"] != "groupchat")
                    if "body" not in got:
                        break
                    bodies.append(got["body"])
                answer = {"bodies": bodies}
            elif op == "flood_iq":
                async def one():
                    iq = client.make_iq_get(queryxmlns="http://jabber.org/protocol/disco#info", ito=request["to"])
                    try:
                        await iq.send(timeout=60)
                        return "result"
                    except IqError as e:
                        return e.iq["error"]["condition"]
                    except IqTimeout:
                        return "timeout"
                answer = {"replies": await asyncio.gather(*[one() for _ in range(request["count"])])}
            elif op == "next_chat":
                bare = slixmpp.JID(request["from"]).bare
                answer = await client.next_message(
                    lambda m: m["from"].bare == bare and m["type"] != "groupchat")
            elif op == "presences":
                bare = slixmpp.JID(request["to"]).bare
                await client.get_roster()  # Prosody forwards "subscribed" only then
                client.send_presence(pto=bare, ptype=request["type"])
                types = []
                while len(types) < request["count"]:
                    try:
                        presence = await asyncio.wait_for(client.presences.get(), 10)
                    except asyncio.TimeoutError:
                        break
                    if presence["from"].bare == bare:
                        types.append(presence["type"])
                answer = {"types": types}
            elif op == "kick":
                await client["xep_0045"].set_role(request["room"], request["nick"], "none")
                answer = {"kicked": True}
            elif op == "commands":
                answer = await client.commands(request["to"])
            elif op == "run":
                answer = await client.run(request["to"], request["node"], request.get("steps", []))
            else:
                answer = {"error": "unknown op %r" % op}
        except Exception as e:  # a test wants the failure, not a dead helper
            answer = {"exception": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(answer), flush=True)
    client.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
