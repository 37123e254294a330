/**
 * The filters of `docker ps --filter` (`GET /containers/json?filters=...`),
 * read as Docker's daemon reads them: a bad value is a 400 naming it, a
 * container named by before or since must exist (404), and labels, which
 * tether containers do not carry, match nothing.
 */
import type { RecordWithSettings } from './containerViews.ts';
import { DOCKER_STATUSES, dockerStatus } from './containerState.ts';
import type { ContainerDirectory } from './directory.ts';
import { ApiError, noSuchContainer } from './errors.ts';
import { type Filters, matchesAny, parseFilters } from './filters.ts';
import { normalizeTag } from '../images.ts';

export interface ListFilter {
  /** Whether the filters ask for stopped containers as well (Docker: a status filter does). */
  readonly impliesAll: boolean;
  matches(record: RecordWithSettings): boolean;
}

type Predicate = (record: RecordWithSettings) => boolean;

/** Each filter's values, checked once per request, as a test of one container. */
const FILTERS: Record<string, (values: readonly string[], directory: ContainerDirectory) => Predicate> = {
  id: (values) => (record) => matchesAny(values, record.id),
  name: (values) => (record) => matchesAny(values, `/${record.name}`),
  status: (values) => {
    for (const status of values) if (!KNOWN_STATUSES.has(status)) throw invalid('status', status);
    return (record) => values.includes(dockerStatus(record));
  },
  // Only a container that ran and ended has an exit code to match.
  exited: (values) => {
    const codes = values.map((value) => (/^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN));
    const bad = values.find((_, i) => !Number.isSafeInteger(codes[i]));
    if (bad !== undefined) throw invalid('exited', bad);
    return (record) => dockerStatus(record) === 'exited' && record.exitCode !== undefined && codes.includes(record.exitCode);
  },
  ancestor: (values) => (record) => values.some((value) => isImage(record, value)),
  before: (values, directory) => {
    const created = values.map((ref) => createdAt(directory, ref));
    return (record) => created.every((time) => Date.parse(record.created) < time);
  },
  since: (values, directory) => {
    const created = values.map((ref) => createdAt(directory, ref));
    return (record) => created.every((time) => Date.parse(record.created) > time);
  },
  // tether containers carry no labels, so no label filter matches (rather than
  // a 400 that would break tools such as compose that always send one).
  label: () => () => false,
};

const KNOWN_STATUSES: ReadonlySet<string> = new Set(DOCKER_STATUSES);

function invalid(name: string, value: string): ApiError {
  return new ApiError(400, `invalid filter '${name}=${value}'`);
}

/** Docker's image reference match: the name as given (an absent tag is `latest`, docker.io/library/ is implied), or an ID or a prefix of one. */
function isImage(record: RecordWithSettings, reference: string): boolean {
  const settings = record.settings;
  if (!settings) return false;
  const tag = normalizeTag(reference);
  if (tag !== undefined && normalizeTag(settings.Image) === tag) return true;
  const id = settings.ImageID.replace(/^sha256:/, '');
  const asked = reference.replace(/^sha256:/, '');
  return /^[0-9a-f]+$/.test(asked) && id.startsWith(asked);
}

function createdAt(directory: ContainerDirectory, ref: string): number {
  const record = directory.find(ref);
  if (!record) throw noSuchContainer(ref, directory.explainUnknown(ref));
  return Date.parse(record.created);
}

export function parseListFilter(raw: string | null, directory: ContainerDirectory): ListFilter {
  const filters: Filters = parseFilters(raw, Object.keys(FILTERS));
  const predicates = [...filters].map(([name, values]) => FILTERS[name]!(values, directory));
  return {
    impliesAll: filters.has('status'),
    matches: (record) => predicates.every((matches) => matches(record)),
  };
}
