import type { AnyStateMachine } from 'xstate';
import { machines } from '../../machines/index.ts';
import { machineGraph } from './graph.ts';
import { layoutMachine } from './layout.ts';
import { machineSvg } from './svg.ts';

/** One machine's state diagram. */
export interface Diagram {
  machine: string;
  svg: string;
}

export async function drawMachine(machine: AnyStateMachine): Promise<Diagram> {
  return { machine: machine.id, svg: machineSvg(await layoutMachine(machineGraph(machine))) };
}

/** Every machine of the registry (machines/index.ts), in its order. */
export async function drawMachines(registry: Record<string, AnyStateMachine> = machines): Promise<Diagram[]> {
  const diagrams: Diagram[] = [];
  for (const machine of Object.values(registry)) diagrams.push(await drawMachine(machine));
  return diagrams;
}
