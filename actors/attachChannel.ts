import { fromCallback } from 'xstate';
import type { ChannelActorInput, ChannelCommand, ContainerChannelEvent } from '../machines/containerChannel.ts';
import {
  CHANNEL_REQ_CLOSE_STDIN,
  CHANNEL_REQ_OUTPUT_OFFSET,
  CHANNEL_REQ_SIGNAL,
  CHANNEL_REQ_UNBLOCK,
  CHANNEL_REQ_WINDOW_CHANGE,
  decodeOutputOffset,
  encodeNoPayload,
  encodeSignal,
  encodeWindowChange,
  OFFSET_LIVE,
} from '../shared/wire.ts';
import type { Log } from '../shared/log.ts';
import { signalExitCode } from '../shared/signals.ts';
import type { LinkRegistry } from './links.ts';
import { AttachOpenError, flushed, openAttach, type ClientAttachChannel } from './ssh/extension.ts';

/**
 * One `attach` channel on a link, for the container channel machine. Output
 * is reported in arrival order; the exit status is reported only after the
 * channel's data and extended data have ended, so it is always last.
 */
export function createAttachChannelActor(registry: LinkRegistry, log: Log) {
  return fromCallback<ChannelCommand, ChannelActorInput>(({ input, receive, sendBack }) => {
    const report = (event: ContainerChannelEvent) => sendBack(event);
    const client = registry.get(input.linkId);
    let channel: ClientAttachChannel | undefined;
    let stopped = false;
    if (!client) {
      report({ type: 'CHANNEL_LOST', reason: `link ${input.linkId} is gone` });
      return;
    }
    const offset = input.offset === 'live' ? OFFSET_LIVE : BigInt(input.offset);
    log('debug', 'opening attach channel', { container: input.containerId, link: input.linkId, offset: String(input.offset) });
    openAttach(client, { containerId: input.containerId, offset }).then(
      (opened) => {
        if (stopped) {
          opened.close();
          return;
        }
        channel = opened;
        wire(opened);
      },
      (err: Error) => {
        log('debug', 'attach channel not opened', { container: input.containerId, link: input.linkId, error: err.message });
        if (stopped) return;
        if (err instanceof AttachOpenError) report({ type: 'CHANNEL_REJECTED', ...err.failure });
        else report({ type: 'CHANNEL_LOST', reason: err.message });
      },
    );

    function wire(ch: ClientAttachChannel) {
      let exit: { exitCode: number; signal?: string } | undefined;
      ch.on('request', (name: string, payload: Buffer) => {
        if (name !== CHANNEL_REQ_OUTPUT_OFFSET) return;
        try {
          const at = Number(decodeOutputOffset(payload));
          log('debug', 'attach channel open', { container: input.containerId, link: input.linkId, offset: at });
          report({ type: 'CHANNEL_OPENED', offset: at });
        } catch (err) {
          log('warn', 'bad output offset from guest', { container: input.containerId, error: (err as Error).message });
          ch.close();
        }
      });
      ch.on('drain', () => report({ type: 'STDIN_ROOM' }));
      ch.on('data', (data: Buffer) => report({ type: 'OUTPUT', stream: 'stdout', data }));
      ch.stderr.on('data', (data: Buffer) => report({ type: 'OUTPUT', stream: 'stderr', data }));
      ch.on('exit', (code: number | null, signal?: string) => {
        // ssh2 reports signal names with a SIG prefix; tether's names have none.
        const name = signal?.replace(/^SIG/, '');
        exit = code === null ? { exitCode: signalExitCode(name ?? ''), signal: name } : { exitCode: code };
      });
      ch.on('close', () => {
        log('debug', 'attach channel closed', { container: input.containerId, link: input.linkId, exit: exit?.exitCode, stopped });
        if (stopped) return;
        if (exit) report({ type: 'EXIT', ...exit });
        else report({ type: 'CHANNEL_LOST', reason: 'attach channel closed before the exit status' });
      });
    }

    const request = (name: string, payload: Buffer) => {
      channel?.request(name, payload, false).catch((err: Error) => log('debug', `${name} not sent`, { error: err.message }));
    };
    // A command the channel cannot carry fails alone; the attach goes on.
    receive((command) => {
      try {
        execute(command);
      } catch (err) {
        log('warn', `attach channel: ${command.type} not sent`, { container: input.containerId, error: (err as Error).message });
      }
    });
    function execute(command: ChannelCommand): void {
      switch (command.type) {
        case 'UNBLOCK':
          return request(CHANNEL_REQ_UNBLOCK, encodeNoPayload());
        case 'STDIN':
          if (channel && !channel.write(command.data)) report({ type: 'STDIN_FULL' });
          return;
        case 'CLOSE_STDIN':
          // A channel request overtakes data still waiting for window space: the close goes once that has gone.
          if (channel) void flushed(channel).then(() => request(CHANNEL_REQ_CLOSE_STDIN, encodeNoPayload()));
          return;
        case 'RESIZE':
          return request(CHANNEL_REQ_WINDOW_CHANGE, encodeWindowChange({ cols: command.cols, rows: command.rows, widthPx: 0, heightPx: 0 }));
        case 'SIGNAL':
          return request(CHANNEL_REQ_SIGNAL, encodeSignal(command.signal));
        case 'PAUSE':
          channel?.pause();
          channel?.stderr.pause();
          return;
        case 'RESUME':
          channel?.resume();
          channel?.stderr.resume();
          return;
      }
    }
    return () => {
      stopped = true;
      channel?.close();
    };
  });
}
