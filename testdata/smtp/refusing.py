"""An aiosmtpd handler for the mail tests: a Maildir mailbox that refuses,
for good (550), every recipient whose address starts with "bounce"."""

from aiosmtpd.handlers import Mailbox


class RefusingMailbox(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"
