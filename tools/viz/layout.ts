/**
 * Places a machine's boxes and routes its arrows with ELK's layered
 * algorithm, all levels at once (INCLUDE_CHILDREN), so an arrow from a state
 * deep inside one compound state to one inside another is routed across the
 * hierarchy. ELK's bundled build runs in Node without a worker or a browser.
 * Every coordinate comes back relative to the diagram's top left corner
 * (`elk.json.*Coords: ROOT`), so svg.ts need not add up offsets.
 */
import elkjs, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { Arrow, MachineGraph, StateBox } from './graph.ts';
import { LINE_HEIGHT, textWidth } from './text.ts';

export interface Point {
  x: number;
  y: number;
}

export interface Rect extends Point {
  width: number;
  height: number;
}

export interface PlacedBox extends Rect {
  box: StateBox;
  children: PlacedBox[];
}

export interface PlacedArrow {
  /** Absent for the arrow from an initial dot. */
  arrow?: Arrow;
  points: Point[];
  label?: Rect;
}

export interface MachineLayout {
  machine: string;
  width: number;
  height: number;
  root: PlacedBox;
  arrows: PlacedArrow[];
  /** The initial dots: the centre, keyed by the id of the state they sit in. */
  initials: Map<string, Point>;
}

export const TITLE_HEIGHT = 24;
export const PADDING = 10;
/** The gap between a final state's two borders. */
export const FINAL_INSET = 4;
export const DOT_SIZE = 12;
const LABEL_HEIGHT = LINE_HEIGHT;

const INITIAL = '#initial';
/** The ELK graph around the machine's root box. */
const DIAGRAM = '#diagram';

/** How every level is laid out: ELK lays out each compound state with its own options. */
const LAYERED = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.edgeRouting': 'POLYLINE',
  // Cycles are broken along a depth-first walk from the initial dots: the way
  // in reads top to bottom, and only the ways back (retries, reconnects) point up.
  'elk.layered.cycleBreaking.strategy': 'DEPTH_FIRST',
  'elk.spacing.nodeNode': '24',
  'elk.layered.spacing.nodeNodeBetweenLayers': '36',
  'elk.spacing.edgeLabel': '2',
};

// elkjs is CommonJS whose types declare an ES default export; its constructor
// is also its own `default`, so this holds under Node and in the esbuild bundle.
const ELK = elkjs.default;
let elk: InstanceType<typeof ELK> | undefined;

export async function layoutMachine(graph: MachineGraph): Promise<MachineLayout> {
  const parents = new Map<string, StateBox | undefined>();
  const index = (box: StateBox, parent?: StateBox) => {
    parents.set(box.id, parent);
    box.children.forEach((child) => index(child, box));
  };
  index(graph.root);

  // ELK wants each edge in the node that holds both its ends (its container).
  const edgesIn = new Map<string, ElkExtendedEdge[]>();
  const addEdge = (container: string, edge: ElkExtendedEdge) => edgesIn.set(container, [...(edgesIn.get(container) ?? []), edge]);
  for (const arrow of graph.arrows) {
    addEdge(containerOf(arrow, parents), {
      id: arrow.id,
      sources: [arrow.source],
      targets: [arrow.target],
      labels: [{ text: arrow.label, width: textWidth(arrow.label) + 4, height: LABEL_HEIGHT }],
    });
  }

  const node = (box: StateBox): ElkNode => {
    const contentWidth = Math.max(textWidth(box.name), ...box.lines.map(textWidth)) + 2 * PADDING;
    const headHeight = TITLE_HEIGHT + box.lines.length * LINE_HEIGHT + (box.lines.length ? PADDING / 2 : 0);
    if (box.children.length === 0) {
      const inset = box.kind === 'final' ? 2 * FINAL_INSET : 0;
      return { id: box.id, width: Math.max(80, contentWidth) + inset, height: headHeight + inset + PADDING / 2 };
    }
    const children = box.children.map(node);
    if (box.initial) {
      children.unshift({ id: box.id + INITIAL, width: DOT_SIZE, height: DOT_SIZE });
      addEdge(box.id, { id: box.id + INITIAL, sources: [box.id + INITIAL], targets: [box.initial] });
    }
    return {
      id: box.id,
      layoutOptions: {
        ...LAYERED,
        'elk.padding': `[top=${headHeight + PADDING},left=${PADDING},bottom=${PADDING},right=${PADDING}]`,
        'elk.nodeSize.constraints': '[MINIMUM_SIZE]',
        'elk.nodeSize.minimum': `(${contentWidth}, ${headHeight})`,
      },
      children,
    };
  };
  const root: ElkNode = {
    id: DIAGRAM,
    layoutOptions: {
      ...LAYERED,
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.padding': '[top=8,left=8,bottom=8,right=8]',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
    },
    children: [node(graph.root)],
  };
  attachEdges(root, edgesIn);

  elk ??= new ELK();
  const laid = await elk.layout(root);
  return {
    machine: graph.machine,
    width: laid.width ?? 0,
    height: laid.height ?? 0,
    root: placed(laid.children![0]!, graph.root),
    arrows: collectEdges(laid, new Map(graph.arrows.map((a) => [a.id, a]))),
    initials: collectInitials(laid),
  };
}

/** The id of the box that holds both ends of an arrow: their deepest common ancestor-or-self, the parent for a self-loop. */
function containerOf(arrow: Arrow, parents: Map<string, StateBox | undefined>): string {
  const lineage = (id: string) => {
    const ids = [id];
    for (let box = parents.get(id); box; box = parents.get(box.id)) ids.unshift(box.id);
    return ids;
  };
  if (arrow.source === arrow.target) return parents.get(arrow.source)?.id ?? DIAGRAM;
  const from = lineage(arrow.source);
  const to = lineage(arrow.target);
  let common = DIAGRAM;
  for (let i = 0; i < Math.min(from.length, to.length) && from[i] === to[i]; i++) common = from[i]!;
  return common;
}

function attachEdges(node: ElkNode, edgesIn: Map<string, ElkExtendedEdge[]>): void {
  const edges = edgesIn.get(node.id);
  if (edges) node.edges = edges;
  node.children?.forEach((child) => attachEdges(child, edgesIn));
}

function placed(node: ElkNode, box: StateBox): PlacedBox {
  const byId = new Map((node.children ?? []).map((child) => [child.id, child]));
  return {
    box,
    x: node.x ?? 0,
    y: node.y ?? 0,
    width: node.width ?? 0,
    height: node.height ?? 0,
    children: box.children.map((child) => placed(byId.get(child.id)!, child)),
  };
}

function collectEdges(node: ElkNode, arrows: Map<string, Arrow>): PlacedArrow[] {
  const here = (node.edges ?? []).map((edge): PlacedArrow => {
    const points = (edge.sections ?? []).flatMap((section) => [section.startPoint, ...(section.bendPoints ?? []), section.endPoint]);
    const label = edge.labels?.[0];
    return {
      arrow: arrows.get(edge.id),
      points,
      label: label && { x: label.x ?? 0, y: label.y ?? 0, width: label.width ?? 0, height: label.height ?? 0 },
    };
  });
  return [...here, ...(node.children ?? []).flatMap((child) => collectEdges(child, arrows))];
}

function collectInitials(node: ElkNode): Map<string, Point> {
  const found = new Map<string, Point>();
  const visit = (n: ElkNode) => {
    for (const child of n.children ?? []) {
      if (child.id.endsWith(INITIAL)) found.set(n.id, { x: (child.x ?? 0) + DOT_SIZE / 2, y: (child.y ?? 0) + DOT_SIZE / 2 });
      else visit(child);
    }
  };
  visit(node);
  return found;
}
