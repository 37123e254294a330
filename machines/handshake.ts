import { assign, sendParent, setup } from 'xstate';
import {
  FINAL_ACK,
  NAK_FRAME,
  PROBE,
  ACK,
  NAK,
  ackFrame,
  concat,
  drawNonce,
  goodAckNonce,
  goodSynNonce,
  matchEcho,
  scanAckOrSyn,
  scanProbe,
  scanSyn,
  scanSynAck,
  synAckFrame,
  synFrame,
  type Scan,
} from '../shared/handshake.ts';

/**
 * The serial line's resync handshake (shared/handshake.ts has the bytes), one
 * machine for both ends: the appliance runs it as `initiator`, the guest as
 * `responder`. Both ends scan what they receive for the frame they expect and
 * drop everything that cannot be part of it, so stale bytes from before the
 * line was (re)opened, repeated SYNs and noise are discarded. A stuck exchange
 * is restarted by time: the initiator sends a fresh `SYN p` after `retry`,
 * the responder forgets its half-done exchange after `stall`.
 *
 * When a side sends a frame that asks for an answer (SYN, `ACK q+1`, the
 * probe, the echo) it drops everything received so far: those bytes left the
 * peer before the peer could have seen the frame, so none of them is the
 * answer, however much they look like one (an "echo" read together with the
 * `ACK q+1` that asks for the probe, say). The responder keeps its buffer after answering a SYN, as a
 * newer SYN split across reads may begin there.
 *
 * The nonces are one byte (VIC's wire format), so a stale exchange replayed
 * on the line whose `ACK p+1` happens to carry the current p (1 in 250) can
 * still pass for a live one; the link then fails in SSH and reconnects.
 *
 * Writes go to the parent as `LINE_WRITE` through `sendParent`: the machine is
 * always invoked by a link machine that owns the port, and a parent event is
 * visible to the model checker as a message, unlike `emit`, which only reaches
 * listeners outside the actor system.
 *
 * The output is the `leftover`: bytes that arrived after the last handshake
 * byte. They are the peer's first SSH bytes and must be handed on.
 */

export type HandshakeRole = 'initiator' | 'responder';

export interface HandshakeInput {
  role: HandshakeRole;
  /** Seeds the nonces (randomness is the assembly's job, never the machine's). */
  seed: number;
  /** Initiator: resend a fresh SYN when no valid answer came within this long. */
  retryMs?: number;
  /** Responder: go back to waiting for SYN when an exchange stalls this long. */
  stallMs?: number;
}

export type HandshakeEvent = { type: 'LINE_BYTES'; data: Uint8Array };
/** Sent to the parent: bytes to write on the line. */
export type LineWrite = { type: 'LINE_WRITE'; data: Uint8Array };
export interface HandshakeOutput {
  leftover: Uint8Array;
}

/** VIC retried once a second, which made a stale line cost up to 40 s; a fast link answers in well under 100 ms. */
export const DEFAULT_RETRY_MS = 100;
export const DEFAULT_STALL_MS = 500;

export interface HandshakeContext {
  role: HandshakeRole;
  /** Generator state for the next nonce. */
  random: number;
  /** Our nonce in the current exchange: p for the initiator, q for the responder. */
  nonce?: number;
  /** The peer's nonce: p for the responder, q for the initiator. */
  peerNonce?: number;
  /** Received bytes not yet consumed by a frame or dropped as noise. */
  buffer: Uint8Array;
  retryMs: number;
  stallMs: number;
  /** Exchanges started (initiator: SYNs sent; responder: SYNs answered), for logs. */
  attempts: number;
}

/** Which frame a state is scanning for; `noise` and `dropNoise` take it as a parameter. */
type Awaited = 'syn' | 'ackOrSyn' | 'synAck' | 'probe';

function scan(awaited: Awaited, context: HandshakeContext): Scan<object> {
  switch (awaited) {
    case 'syn':
      return scanSyn(context.buffer);
    case 'ackOrSyn':
      return scanAckOrSyn(context.buffer, context.nonce!);
    case 'synAck':
      return scanSynAck(context.buffer, context.nonce!);
    case 'probe':
      return scanProbe(context.buffer);
  }
}

const hit = <F>(result: Scan<F>) => (result.found ? result : undefined);
const ackOrSyn = (context: HandshakeContext) => hit(scanAckOrSyn(context.buffer, context.nonce!))?.frame;

export const handshakeMachine = setup({
  types: {
    context: {} as HandshakeContext,
    events: {} as HandshakeEvent,
    input: {} as HandshakeInput,
    output: {} as HandshakeOutput,
  },
  delays: {
    retry: ({ context }) => context.retryMs,
    stall: ({ context }) => context.stallMs,
  },
  guards: {
    isInitiator: ({ context }) => context.role === 'initiator',
    synArrived: ({ context }) => scanSyn(context.buffer).found,
    ackArrived: ({ context }) => ackOrSyn(context) === 'ack',
    newSynArrived: ({ context }) => ackOrSyn(context) === 'syn',
    synAckArrived: ({ context }) => scanSynAck(context.buffer, context.nonce!).found,
    probeArrived: ({ context }) => scanProbe(context.buffer).found,
    noise: ({ context }, params: { awaited: Awaited }) => {
      const result = scan(params.awaited, context);
      return !result.found && result.keepFrom > 0;
    },
    echoMatches: ({ context }) => matchEcho(context.buffer) === 'match',
    echoMismatches: ({ context }) => matchEcho(context.buffer) === 'mismatch',
    finalAck: ({ context }) => context.buffer[0] === ACK,
    finalNak: ({ context }) => context.buffer[0] === NAK,
    anyByte: ({ context }) => context.buffer.length > 0,
  },
  actions: {
    append: assign({ buffer: ({ context, event }) => concat(context.buffer, event.data) }),
    dropNoise: assign({
      buffer: ({ context }, params: { awaited: Awaited }) => {
        const result = scan(params.awaited, context);
        return result.found ? context.buffer : context.buffer.subarray(result.keepFrom);
      },
    }),
    // Initiator.
    startExchange: assign(({ context }) => {
      const { nonce, state } = drawNonce(context.random, context.nonce, goodSynNonce);
      return { nonce, random: state, peerNonce: undefined, attempts: context.attempts + 1 };
    }),
    sendSyn: sendParent(({ context }): LineWrite => ({ type: 'LINE_WRITE', data: synFrame(context.nonce!) })),
    takeSynAck: assign({ peerNonce: ({ context }) => hit(scanSynAck(context.buffer, context.nonce!))!.q }),
    sendAck: sendParent(({ context }): LineWrite => ({ type: 'LINE_WRITE', data: ackFrame(context.peerNonce!) })),
    sendEcho: sendParent((): LineWrite => ({ type: 'LINE_WRITE', data: PROBE })),
    takeFirstByte: assign({ buffer: ({ context }) => context.buffer.subarray(1) }),
    // Responder.
    takeSyn: assign(({ context }) => {
      const frame = hit(scanSyn(context.buffer))!;
      const { nonce, state } = drawNonce(context.random, context.nonce, goodAckNonce);
      return { peerNonce: frame.p, nonce, random: state, buffer: context.buffer.subarray(frame.end), attempts: context.attempts + 1 };
    }),
    sendSynAck: sendParent(({ context }): LineWrite => ({ type: 'LINE_WRITE', data: synAckFrame(context.peerNonce!, context.nonce!) })),
    sendProbe: sendParent((): LineWrite => ({ type: 'LINE_WRITE', data: PROBE })),
    takeEcho: assign({ buffer: ({ context }) => context.buffer.subarray(PROBE.length) }),
    sendFinalAck: sendParent((): LineWrite => ({ type: 'LINE_WRITE', data: FINAL_ACK })),
    // Both.
    /** Before a frame that asks for an answer: nothing received so far can be that answer. */
    forgetReceived: assign({ buffer: () => new Uint8Array(0) }),
    sendNak: sendParent((): LineWrite => ({ type: 'LINE_WRITE', data: NAK_FRAME })),
  },
}).createMachine({
  id: 'handshake',
  context: ({ input }) => ({
    role: input.role,
    random: input.seed >>> 0,
    buffer: new Uint8Array(0),
    retryMs: input.retryMs ?? DEFAULT_RETRY_MS,
    stallMs: input.stallMs ?? DEFAULT_STALL_MS,
    attempts: 0,
  }),
  on: {
    LINE_BYTES: { actions: 'append' },
  },
  initial: 'start',
  states: {
    start: {
      always: [{ guard: 'isInitiator', target: 'initiator' }, { target: 'responder' }],
    },
    initiator: {
      initial: 'awaitSynAck',
      states: {
        awaitSynAck: {
          entry: ['startExchange', 'forgetReceived', 'sendSyn'],
          always: [
            { guard: 'synAckArrived', target: 'awaitProbe', actions: ['takeSynAck', 'forgetReceived', 'sendAck'] },
            { guard: { type: 'noise', params: { awaited: 'synAck' } }, actions: { type: 'dropNoise', params: { awaited: 'synAck' } } },
          ],
          after: { retry: { target: 'awaitSynAck', reenter: true } },
        },
        awaitProbe: {
          always: [
            { guard: 'probeArrived', target: 'awaitFinal', actions: ['forgetReceived', 'sendEcho'] },
            { guard: { type: 'noise', params: { awaited: 'probe' } }, actions: { type: 'dropNoise', params: { awaited: 'probe' } } },
          ],
          after: { retry: 'awaitSynAck' },
        },
        awaitFinal: {
          // The responder sends nothing between the probe and its verdict, so
          // the very next byte decides; anything else means the line is not clean.
          always: [
            { guard: 'finalAck', target: '#handshake.done', actions: 'takeFirstByte' },
            { guard: 'finalNak', target: 'awaitSynAck', actions: 'takeFirstByte' },
            { guard: 'anyByte', target: 'awaitSynAck', actions: ['takeFirstByte', 'sendNak'] },
          ],
          after: { retry: 'awaitSynAck' },
        },
      },
    },
    responder: {
      initial: 'awaitSyn',
      states: {
        awaitSyn: {
          always: [
            { guard: 'synArrived', target: 'awaitAck', actions: ['takeSyn', 'sendSynAck'] },
            { guard: { type: 'noise', params: { awaited: 'syn' } }, actions: { type: 'dropNoise', params: { awaited: 'syn' } } },
          ],
        },
        awaitAck: {
          always: [
            { guard: 'ackArrived', target: 'awaitEcho', actions: ['forgetReceived', 'sendProbe'] },
            // awaitSyn answers the newest SYN from the same buffer.
            { guard: 'newSynArrived', target: 'awaitSyn' },
            { guard: { type: 'noise', params: { awaited: 'ackOrSyn' } }, actions: { type: 'dropNoise', params: { awaited: 'ackOrSyn' } } },
          ],
          after: { stall: 'awaitSyn' },
        },
        awaitEcho: {
          always: [
            { guard: 'echoMatches', target: '#handshake.done', actions: ['takeEcho', 'sendFinalAck'] },
            // The bytes stay buffered: a new SYN may be among them.
            { guard: 'echoMismatches', target: 'awaitSyn', actions: 'sendNak' },
          ],
          after: { stall: 'awaitSyn' },
        },
      },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ leftover: context.buffer }),
});
