import { createActor } from 'xstate';
import { processSessionMachine } from '../machines/processSession.ts';
import { createProcessActor } from '../actors/process.ts';
const m = processSessionMachine.provide({ actors: { process: createProcessActor() } });
const a = createActor(m, { input: { sessionId: 's', spec: { cmd: ['sh', '-c', 'trap "echo trapped" TERM; sleep 1000 & echo started; wait $!; wait $!; echo "sleep: $?"'], env: [], cwd: '/', tty: false, openStdin: false, runBlock: false, stopSignal: 'TERM' } } });
a.on('SESSION_OUTPUT', (e) => { console.log('out', JSON.stringify(Buffer.from(e.data).toString()), a.getSnapshot().value); if (Buffer.from(e.data).toString().includes('started')) { a.send({ type: 'SIGNAL', signal: 'TERM' }); console.log('sent'); } });
a.subscribe({ complete: () => console.log('done', a.getSnapshot().output) });
a.start();
setTimeout(() => a.stop(), 3000);
