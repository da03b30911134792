# -*- test-case-name: tests.icm.test_dialogue -*-
"""
Service Control dialogues, VRU side (docs/ged125.rst §6, §7), and the API call
logic uses.

Call logic starts a dialogue for a call on a link (L{PGLink.newCall} or
L{PGLink.requestInstruction}), receives ICM's instructions as method calls
on its L{CallLogic} (C{runScript}, C{cancelScript}, C{connect}, ...), and
answers with the dialogue's methods (C{scriptResult}, C{report},
C{resourceConnected}, C{callerGone}, C{fail}).  C{ended} tells it when and
why the dialogue is over.  A dialogue belongs to its link, not to one TCP
connection, so it survives a duplex takeover (see L{ctic.icm.link}).

Project decisions where the reference is silent (all inferred in docs/ged125.rst):
- SendSeqNo: one counter per dialogue per direction, starting at
  C{send_seq_start} (default 0); the PG's values are logged when out of
  order, never rejected.
- Instruction timeout: whenever the dialogue waits for ICM (after NEW_CALL,
  REQUEST_INSTRUCTION, RUN_SCRIPT_RESULT, DIALOGUE_FAILURE_CONF,
  RESOURCE_CONNECTED, or a failed CONNECT reported), C{instruction_timeout}
  seconds of silence → DIALOGUE_FAILURE_EVENT(E_TIMEOUT) and the dialogue
  ends (reason C{"timeout"}).
- CANCEL is answered with DIALOGUE_FAILURE_CONF carrying the CANCEL's
  InvokeID; no RUN_SCRIPT_RESULT is ever sent for a cancelled request.
- A CONNECT or RELEASE while a RUN_SCRIPT_REQ is outstanding supersedes it:
  call logic must stop the script; a later result for it is dropped.
- EVENT_REPORT ANSWER ends the dialogue (unless the CONNECT had
  TransferHint); BUSY, NO_ANSWER, CONNECT_FAILURE, CONNECT_INVALID wait for
  a re-query unless we advertised FEATURE_NO_REQUERY; ABANDON and
  DISCONNECT end it.  C{callerGone} picks ABANDON before a CONNECT was
  carried out and DISCONNECT after (§7.7 decision).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.logger import Logger
from zope.interface import Interface, implementer

from ctic.icm import constants as C
from ctic.icm.codec import Message, sc
from ctic.timers import Timer

log = Logger(namespace="ctic.icm.dialogue")

WAIT_INSTRUCTION = "WAIT_INSTRUCTION"
RUNNING_SCRIPT = "RUNNING_SCRIPT"
CONNECTING = "CONNECTING"
ENDED = "ENDED"

_ENDING_EVENTS = {C.ABANDON, C.DISCONNECT}
_REQUERY_EVENTS = {C.BUSY, C.NO_ANSWER, C.CONNECT_FAILURE, C.CONNECT_INVALID}


@dataclass
class Instruction:
    """An instruction from ICM, as call logic sees it."""

    name: str  # RUN_SCRIPT_REQ, CONNECT, CONNECT_TO_RESOURCE, TEMPORARY_CONNECT, CANCEL, RELEASE
    invoke_id: int | None = None
    script_id: str | None = None
    script_configuration: str | None = None
    label: str | None = None
    label_type: int | None = None
    transfer_hint: bool = False
    request_id: int | None = None  # CANCEL: the InvokeID to cancel
    cause: int | None = None  # RELEASE
    ani: str | None = None
    ced: str | None = None
    call_variables: dict = field(default_factory=dict)  # {1..10: str}
    ecc: dict = field(default_factory=dict)  # {name or tag: value}
    message: Message | None = None

    @classmethod
    def fromMessage(cls, msg: Message, ecc_names: dict[int, str]):
        ecc = {}
        for tag, value in msg.ecc().items():
            ecc[ecc_names.get(tag, tag)] = value
        fixed = msg.fixed
        hint = msg.get(C.TAG_TransferHint)
        return cls(
            name=msg.name, invoke_id=fixed.get("InvokeID"), script_id=msg.get(C.TAG_ScriptID),
            script_configuration=msg.get(C.TAG_ScriptConfiguration), label=msg.get(C.TAG_Label),
            label_type=fixed.get("LabelType"), transfer_hint=bool(hint),
            request_id=fixed.get("RequestID"), cause=fixed.get("Cause"), ani=msg.get(C.TAG_ANI),
            ced=msg.get(C.TAG_CED), call_variables=msg.call_variables(), ecc=ecc, message=msg)


class ICallLogic(Interface):
    """What a dialogue tells the call logic that owns it."""

    def runScript(dialogue, instruction):
        """RUN_SCRIPT_REQ: run it; answer with dialogue.scriptResult/scriptFailed(invoke_id)."""

    def cancelScript(dialogue, instruction):
        """CANCEL of an outstanding script: return True if it was stopped."""

    def connect(dialogue, instruction):
        """CONNECT: transfer the call to the label; then dialogue.report(EventID)."""

    def connectToResource(dialogue, instruction):
        """CONNECT_TO_RESOURCE: drop any outgoing leg, then dialogue.resourceConnected()."""

    def temporaryConnect(dialogue, instruction):
        """TEMPORARY_CONNECT (semantics [U])."""

    def release(dialogue, instruction):
        """RELEASE: release the call; the dialogue has ended."""

    def ended(dialogue, reason, error_code):
        """The dialogue is over: reason is released | reported | failed | timeout | link-lost | local."""


@implementer(ICallLogic)
class CallLogic:
    """A base with harmless defaults, for call logic that cares about a few events."""

    def runScript(self, dialogue, instruction):
        dialogue.scriptFailed(instruction.invoke_id, C.E_INVALID_SCRIPT)

    def cancelScript(self, dialogue, instruction):
        return True

    def connect(self, dialogue, instruction):
        dialogue.report(C.CONNECT_INVALID)

    def connectToResource(self, dialogue, instruction):
        dialogue.resourceConnected()

    def temporaryConnect(self, dialogue, instruction):
        pass

    def release(self, dialogue, instruction):
        pass

    def ended(self, dialogue, reason, error_code):
        pass


class Dialogue:
    """
    One Service Control dialogue (one call).  Created by its L{PGLink}.

    @ivar id: the DialogueID we allocated.
    @ivar outstanding: InvokeID → L{Instruction} of RUN_SCRIPT_REQs not yet answered.
    @ivar connected: a CONNECT has been carried out (for ABANDON vs DISCONNECT).
    """

    def __init__(self, link, dialogue_id, logic, kind):
        self.link = link
        self.id = dialogue_id
        self.logic = logic
        self.kind = kind
        self.state = WAIT_INSTRUCTION
        self.outstanding: dict[int, Instruction] = {}
        self.connected = False
        self.transfer_hint = False
        self.end_reason = None
        self.error_code = None
        self._send_seq = link.settings.send_seq_start
        self._recv_seq = None
        self._timer = Timer(link.clock, self._instructionTimedOut)
        self.ecc_tags = link.settings.ecc_tags()

    def __repr__(self):
        return f"<Dialogue {self.id} {self.kind} {self.state} on {self.link.name}>"

    @property
    def ended_(self) -> bool:
        return self.state == ENDED

    # --- sending --------------------------------------------------------------------------

    def _send(self, subtype, floating=None, **fixed):
        msg = sc(subtype, self.id, self._send_seq, floating, **fixed)
        self._send_seq = (self._send_seq + 1) & 0xFFFFFFFF
        if self._send_seq == C.NULL:
            self._send_seq = 0
        self.link.send(msg)

    def _waitForInstruction(self):
        self.state = WAIT_INSTRUCTION
        self._timer.start(self.link.settings.instruction_timeout)

    def _vars(self, call_variables=None, ecc=None, ced=None):
        floating = []
        if ced is not None:
            floating.append((C.TAG_CED, ced, None))
        for n, value in sorted((call_variables or {}).items()):
            floating.append((C.call_variable_tag(n), value, None))
        for key, value in (ecc or {}).items():
            tag = self.ecc_tags.get(key, key)
            if not isinstance(tag, int):
                raise ValueError(f"ECC variable {key!r} is not registered")
            if isinstance(value, dict):
                for index, item in sorted(value.items()):
                    floating.append((C.TAG_ECC_VAR_ARRAY, (tag, index, item), None))
            else:
                floating.append((C.TAG_ECC_VAR_VALUE, (tag, value), None))
        return floating

    def start(self, subtype, trunk_group_id, trunk_number, service_id, floating):
        self._send(subtype, floating, TrunkGroupID=trunk_group_id, TrunkNumber=trunk_number,
                   ServiceID=service_id)
        self._waitForInstruction()

    # --- call logic answers ----------------------------------------------------------------

    def scriptResult(self, invoke_id, ok=True, ced=None, call_variables=None, ecc=None,
                     new_transaction=None):
        """RUN_SCRIPT_RESULT for an outstanding RUN_SCRIPT_REQ (ResultCode TRUE = no errors)."""
        if self.outstanding.pop(invoke_id, None) is None:
            log.info("Dropped a late result for InvokeID {invoke_id} on dialogue {dialogue_id}",
                     invoke_id=invoke_id, dialogue_id=self.id)
            return
        floating = self._vars(call_variables, ecc, ced)
        if new_transaction is not None:
            floating.append((C.TAG_NewTransaction, int(bool(new_transaction)), None))
        self._send(C.RUN_SCRIPT_RESULT, floating, InvokeID=invoke_id, ResultCode=int(bool(ok)))
        if not self.outstanding and self.state == RUNNING_SCRIPT:
            self._waitForInstruction()

    def scriptFailed(self, invoke_id, error_code=C.E_INVALID_SCRIPT):
        """DIALOGUE_FAILURE_CONF for a RUN_SCRIPT_REQ (§2.1: must carry its InvokeID)."""
        if self.outstanding.pop(invoke_id, None) is None:
            log.info("Dropped a late failure for InvokeID {invoke_id} on dialogue {dialogue_id}",
                     invoke_id=invoke_id, dialogue_id=self.id)
            return
        self._send(C.DIALOGUE_FAILURE_CONF, InvokeID=invoke_id, ErrorCode=error_code)
        if not self.outstanding and self.state == RUNNING_SCRIPT:
            self._waitForInstruction()

    def report(self, event_id, cause_code=None):
        """EVENT_REPORT; CauseCode only goes with DISCONNECT and ABANDON (§4.4)."""
        if self.state == ENDED:
            return
        floating = []
        if cause_code is not None and event_id in _ENDING_EVENTS:
            floating.append((C.TAG_CauseCode, cause_code, None))
        self._send(C.EVENT_REPORT, floating, EventID=event_id)
        if event_id == C.ANSWER:
            self.connected = True
            if self.transfer_hint:
                self._waitForInstruction()
            else:
                self._end("reported", None)
        elif event_id in _ENDING_EVENTS:
            self._end("reported", None)
        elif event_id in _REQUERY_EVENTS:
            if self.link.settings.service_features & C.FEATURE_NO_REQUERY:
                self._end("reported", None)
            else:
                self._waitForInstruction()

    def resourceConnected(self):
        """RESOURCE_CONNECTED, the mandatory answer to CONNECT_TO_RESOURCE (§2.1)."""
        if self.state == ENDED:
            return
        self._send(C.RESOURCE_CONNECTED)
        self.connected = False
        self._waitForInstruction()

    def callerGone(self, cause_code=1):
        """The caller hung up: ABANDON before a CONNECT was carried out, DISCONNECT after."""
        self.report(C.DISCONNECT if self.connected else C.ABANDON, cause_code)

    def fail(self, error_code=C.E_UNSPECIFIED_FAILURE):
        """DIALOGUE_FAILURE_EVENT: the dialogue is dead for ICM (§2.1)."""
        if self.state == ENDED:
            return
        self._send(C.DIALOGUE_FAILURE_EVENT, ErrorCode=error_code)
        self._end("local", error_code)

    # --- from the PG ------------------------------------------------------------------------

    def receive(self, msg: Message) -> None:
        if self._recv_seq is not None and msg.send_seq != (self._recv_seq + 1) & 0xFFFFFFFF:
            log.debug("SendSeqNo {seq} on dialogue {dialogue_id} after {last}", seq=msg.send_seq,
                      dialogue_id=self.id, last=self._recv_seq)
        self._recv_seq = msg.send_seq
        handler = getattr(self, "sc_" + msg.name, None)
        if handler is None:
            log.warn("Skipped {name} on dialogue {dialogue_id}: not a PG-to-VRU dialogue message",
                     name=msg.name, dialogue_id=self.id)
            return
        handler(msg)

    def _instruction(self, msg):
        return Instruction.fromMessage(msg, {tag: name for name, tag in self.ecc_tags.items()})

    def sc_RUN_SCRIPT_REQ(self, msg):
        self._timer.cancel()
        instruction = self._instruction(msg)
        self.outstanding[instruction.invoke_id] = instruction
        self.state = RUNNING_SCRIPT
        self.logic.runScript(self, instruction)

    def sc_CANCEL(self, msg):
        instruction = self._instruction(msg)
        target = self.outstanding.get(instruction.request_id)
        if target is None:
            code = C.E_INVALID_INVOKEID
        elif self.logic.cancelScript(self, target):
            del self.outstanding[instruction.request_id]
            code = C.E_OPERATION_CANCELLED
        else:
            code = C.E_OPERATION_NOT_CANCELLED
        self._send(C.DIALOGUE_FAILURE_CONF, InvokeID=instruction.invoke_id, ErrorCode=code)
        # A CANCEL during a CONNECT leaves it in progress: call logic still owes the EVENT_REPORT.
        if not self.outstanding and self.state in (RUNNING_SCRIPT, WAIT_INSTRUCTION):
            self._waitForInstruction()

    def sc_CONNECT(self, msg):
        self._timer.cancel()
        self._supersedeScripts("CONNECT")
        instruction = self._instruction(msg)
        self.transfer_hint = instruction.transfer_hint
        self.state = CONNECTING
        self.logic.connect(self, instruction)

    def sc_CONNECT_TO_RESOURCE(self, msg):
        self._timer.cancel()
        self._supersedeScripts("CONNECT_TO_RESOURCE")
        self.state = CONNECTING
        self.logic.connectToResource(self, self._instruction(msg))

    def sc_TEMPORARY_CONNECT(self, msg):
        self._timer.cancel()
        self._supersedeScripts("TEMPORARY_CONNECT")
        self.state = CONNECTING
        self.logic.temporaryConnect(self, self._instruction(msg))

    def sc_RELEASE(self, msg):
        self._supersedeScripts("RELEASE")
        instruction = self._instruction(msg)
        self._end("released", None, notify=False)
        self.logic.release(self, instruction)
        self.logic.ended(self, "released", None)

    def sc_DIALOGUE_FAILURE_EVENT(self, msg):
        code = msg["ErrorCode"]
        log.info("ICM failed dialogue {dialogue_id}: {error}", dialogue_id=self.id,
                 error=C.STATUS_NAMES.get(code, code))
        self._end("failed", code)

    def sc_DIALOGUE_FAILURE_CONF(self, msg):
        log.warn("DIALOGUE_FAILURE_CONF from the PG on dialogue {dialogue_id}: {error}",
                 dialogue_id=self.id, error=C.STATUS_NAMES.get(msg["ErrorCode"], msg["ErrorCode"]))

    def _supersedeScripts(self, by):
        if self.outstanding:
            log.info("{by} on dialogue {dialogue_id} supersedes outstanding InvokeIDs {invoke_ids}",
                     by=by, dialogue_id=self.id, invoke_ids=sorted(self.outstanding))
            self.outstanding.clear()

    # --- ending -----------------------------------------------------------------------------

    def _instructionTimedOut(self):
        log.warn("No instruction from ICM on dialogue {dialogue_id} for {timeout}s: E_TIMEOUT",
                 dialogue_id=self.id, timeout=self.link.settings.instruction_timeout)
        self._send(C.DIALOGUE_FAILURE_EVENT, ErrorCode=C.E_TIMEOUT)
        self._end("timeout", C.E_TIMEOUT)

    def linkLost(self):
        """No PG session came back within failover_hold; local handling takes over."""
        self._end("link-lost", None)

    def _end(self, reason, error_code, notify=True):
        if self.state == ENDED:
            return
        self.state = ENDED
        self.end_reason = reason
        self.error_code = error_code
        self._timer.cancel()
        self.outstanding.clear()
        self.link.dialogueEnded(self)
        if notify:
            self.logic.ended(self, reason, error_code)
