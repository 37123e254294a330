import { fromCallback, type AnyActorRef } from 'xstate';
import type { OutputLogCommand, SshServerCommand } from '../machines/guest.ts';
import { OutputLog } from '../shared/outputLog.ts';

/**
 * The guest's output logs, one per session (shared/outputLog.ts): the guest
 * machine decides what is appended and what a channel is replayed, and keeps
 * the logs' extents; this actor keeps the bytes. A replay goes straight to the
 * SSH server (registered as `sshServer`) as the channel's output, ahead of
 * anything the guest machine forwards after it.
 */
export function createOutputLogActor(capacity: number) {
  return fromCallback<OutputLogCommand>(({ receive, system }) => {
    const logs = new Map<string, OutputLog>();
    const logOf = (sessionId: string) => logs.get(sessionId) ?? logs.set(sessionId, new OutputLog(capacity)).get(sessionId)!;
    receive((command) => {
      const log = logOf(command.sessionId);
      if (command.type === 'APPEND') return log.append(command.stream, command.data);
      const server = system.get('sshServer') as AnyActorRef | undefined;
      if (!server) return;
      for (const record of log.read(command.from, Number.POSITIVE_INFINITY).records) {
        server.send({ type: 'CHANNEL_OUTPUT', channelId: command.channelId, stream: record.stream, data: record.data } satisfies SshServerCommand);
      }
    });
  });
}
