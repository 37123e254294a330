/**
 * The image routes over the image store (appliance/images.ts): `docker
 * import`, `docker images`, `docker image inspect`, `docker rmi`, and a
 * `docker pull` refused with what to do instead, since tether never contacts
 * a registry. An import reads its whole tarball before it answers, so every
 * failure is an HTTP status with Docker's JSON error body, never an error
 * half way through a progress stream.
 */
import { AmbiguousImage, BadTarball, HOST_IMAGE, type ImageRecord, type ImageStore, type ImageUser, normalizeTag, planRemoval, type StoredImage } from '../images.ts';
import { isListed, isRunning } from './containerState.ts';
import type { RecordWithSettings } from './containerViews.ts';
import type { ContainerDirectory } from './directory.ts';
import { ApiError } from './errors.ts';
import { parseFilters } from './filters.ts';
import { boolParam } from './query.ts';
import { json } from './reply.ts';
import type { Route } from './router.ts';
import { GO_ARCH } from './system.ts';

/** The image a reference names: Docker's 404 for none, a 400 for an ID prefix that fits several. */
async function imageNamed(store: ImageStore, reference: string): Promise<StoredImage> {
  let image: StoredImage | undefined;
  try {
    image = await store.find(reference);
  } catch (error) {
    if (error instanceof AmbiguousImage) throw new ApiError(400, error.message);
    throw error;
  }
  if (!image) throw new ApiError(404, `No such image: ${reference}`);
  return image;
}

/** `docker images NAME` sends the name as a `reference` filter: a glob over `name` and `name:tag`. */
function matchesReference(patterns: readonly string[], record: ImageRecord): boolean {
  const globs = patterns.map((pattern) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`));
  return record.RepoTags.some((tag) => {
    const name = tag.slice(0, tag.lastIndexOf(':'));
    return globs.some((glob) => glob.test(name) || glob.test(tag));
  });
}

function summary(record: ImageRecord) {
  return {
    Id: record.Id,
    ParentId: '',
    RepoTags: record.RepoTags,
    RepoDigests: [],
    Created: record.Created,
    Size: record.Size,
    SharedSize: -1,
    Labels: {},
    Containers: -1,
  };
}

function details({ record, rootfs }: StoredImage) {
  return {
    Id: record.Id,
    RepoTags: record.RepoTags,
    RepoDigests: [],
    Parent: '',
    Comment: record.Comment,
    // RFC 3339 as Go writes it: no fraction when there is none.
    Created: new Date(record.Created * 1000).toISOString().replace('.000Z', 'Z'),
    DockerVersion: '',
    Author: '',
    Config: record.Config,
    Architecture: GO_ARCH[process.arch] ?? process.arch,
    Os: 'linux',
    Size: record.Size,
    // Where the root file system lies, which is what a containerVM boots from.
    GraphDriver: { Name: 'rootfs', Data: { Dir: rootfs } },
    RootFS: { Type: 'layers', Layers: record.Id === HOST_IMAGE.record.Id ? [] : [record.Id] },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}

/** The containers created from image `id`, as moby's removal checks see them. */
function usersOf(directory: Pick<ContainerDirectory, 'list'>, id: string): ImageUser[] {
  const records: RecordWithSettings[] = directory.list();
  return records.filter((record) => isListed(record) && record.settings?.ImageID === id).map((record) => ({ id: record.id, running: isRunning(record) }));
}

/** `directory`: the containers, whose images `docker rmi` keeps as Docker does. */
export function imageRoutes(store: ImageStore, directory: Pick<ContainerDirectory, 'list'>): Route[] {
  return [
    {
      method: 'POST',
      path: '/images/create',
      handler: async ({ query, body }) => {
        const fromImage = query.get('fromImage');
        if (fromImage) {
          // The CLI sends docker.io/library/NAME; the advice reads better in the name the user typed.
          const wanted = normalizeTag(fromImage, query.get('tag') ?? '') ?? fromImage;
          throw new ApiError(
            404,
            `tether runs containerVMs from local root file systems and never contacts a registry, so it cannot pull ${wanted}: import a tarball of its root file system under that name instead: docker import rootfs.tar ${wanted}`,
          );
        }
        const fromSrc = query.get('fromSrc');
        if (fromSrc !== '-') {
          throw new ApiError(
            400,
            fromSrc
              ? `cannot import from ${fromSrc}: tether fetches nothing; download it and run docker import FILE NAME`
              : 'POST /images/create needs fromSrc=- (a tarball in the request body) or fromImage',
          );
        }
        const changes = query.getAll('changes').filter((change) => change !== '');
        if (changes.length > 0) throw new ApiError(400, `docker import --change is not supported by tether yet (got ${changes.join('; ')})`);
        const repo = query.get('repo') ?? '';
        const tag = repo === '' ? undefined : normalizeTag(repo, query.get('tag') ?? '');
        if (repo !== '' && tag === undefined) {
          throw new ApiError(400, `invalid reference format: repository name ${JSON.stringify(repo)} with tag ${JSON.stringify(query.get('tag') ?? '')}`);
        }
        if (tag !== undefined && HOST_IMAGE.record.RepoTags.includes(tag)) {
          throw new ApiError(409, `cannot import as ${tag}: that name is the built-in image of the host's root file system`);
        }
        if (!body) throw new ApiError(400, 'docker import needs a request body: the tarball');
        let record: ImageRecord;
        try {
          record = await store.import(body, { ...(tag ? { tag } : {}), comment: query.get('message') ?? '' });
        } catch (error) {
          if (error instanceof BadTarball) throw new ApiError(400, `importing ${tag ?? 'an untagged image'}: ${error.message}`);
          throw error;
        }
        // Docker streams progress and ends with the ID as a status line, which the CLI prints.
        return json(200, { status: record.Id });
      },
    },
    {
      method: 'GET',
      path: '/images/json',
      handler: async ({ query }) => {
        const references = parseFilters(query.get('filters'), ['reference']).get('reference');
        const images = (await store.list()).filter(({ record }) => !references || matchesReference(references, record));
        return json(
          200,
          images.map(({ record }) => summary(record)),
        );
      },
    },
    {
      method: 'GET',
      path: '/images/{name}/json',
      handler: async ({ params }) => json(200, details(await imageNamed(store, params.name!))),
    },
    {
      method: 'DELETE',
      path: '/images/{name}',
      handler: async ({ params, query }) => {
        const reference = params.name!;
        const image = await imageNamed(store, reference);
        if (image === HOST_IMAGE) {
          throw new ApiError(409, `conflict: unable to remove ${reference}: it is the host's own root file system, built in to tether, not a stored image`);
        }
        const removal = planRemoval(image.record, reference, boolParam(query, 'force'), usersOf(directory, image.record.Id));
        if (removal.kind === 'conflict') throw new ApiError(409, removal.reason);
        await store.remove(image, removal);
        return json(
          200,
          removal.kind === 'untag'
            ? removal.tags.map((tag) => ({ Untagged: tag }))
            : [...removal.untagged.map((tag) => ({ Untagged: tag })), { Deleted: image.record.Id }],
        );
      },
    },
  ];
}
