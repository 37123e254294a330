/*
 * confine: the step between the guest init's fork and a container process's
 * exec, which Node cannot run code in. It takes the process's confinement
 * from its arguments, applies it to itself, then executes the command:
 *
 *   confine [-U FD] [-u UID -g GID [-G GID,GID...]] [-c CAPS] [-n] [-s BPF] -- FILE ARGV0 [ARG...]
 *   confine -H
 *
 *   -U          join the container's user namespace, which the parent (the
 *               guest init) holds open as descriptor FD: it is opened
 *               through /proc/PPID/fd, since a pty's child cannot be given a
 *               descriptor. The user and groups are then always set (root's,
 *               0, without -u), since the init's own have no ID inside
 *   -u, -g, -G  user, group and supplementary groups (decimal)
 *   -c          the capability set as a hexadecimal bit mask: the bounding
 *               set, and the permitted and effective sets; inheritable and
 *               ambient are emptied. Capabilities this process does not hold
 *               (the kernel lacks them, or the guest init was started
 *               without them) are left out, as Docker leaves out what its
 *               daemon lacks
 *   -n          PR_SET_NO_NEW_PRIVS
 *   -s          a seccomp filter: the BPF program (struct sock_filter[]) in
 *               hexadecimal, as libseccomp exported it
 *   -H          hold a new user namespace: says "ready" on stdout, then
 *               waits for stdin to end, so that the init can write the
 *               namespace's ID maps and open it through /proc/PID/ns
 *               meanwhile (a multithreaded process such as Node cannot
 *               unshare one itself)
 *
 * The order is runc's: without no_new_privs, installing a filter needs
 * CAP_SYS_ADMIN, so the filter goes first, before any capability is
 * dropped; with it, the filter goes last, so that as few calls as possible
 * run under it. A filter must therefore allow what follows it here (Docker's
 * profile allows capset, setresuid, setgroups, prctl and execve).
 *
 * It is linked statically: the container's root, where it runs, may have
 * no C library at all. Any failure ends it with 126 (127 when FILE does not
 * exist) and a line on stderr naming the step, so a process never runs less
 * confined than asked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_GROUPS 65536

static void fail(int status, const char *format, ...) {
  va_list args;
  int saved = errno;
  fputs("tether confine: ", stderr);
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
  fprintf(stderr, ": %s\n", strerror(saved));
  exit(status);
}

static void usage(const char *why) {
  fprintf(stderr, "tether confine: %s\nusage: confine [-U FD] [-u UID -g GID [-G GID,...]] [-c CAPS] [-n] [-s BPF] -- FILE ARGV0 [ARG...]\n       confine -H\n", why);
  exit(126);
}

static unsigned long number(const char *text, int base, unsigned long max, const char *what) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(text, &end, base);
  if (errno != 0 || end == text || *end != '\0' || n > max) {
    fprintf(stderr, "tether confine: %s: not a number up to %lu: \"%s\"\n", what, max, text);
    exit(126);
  }
  return (unsigned long)n;
}

static size_t parse_groups(const char *text, gid_t *groups) {
  size_t n = 0;
  char *copy = strdup(text), *save = NULL;
  if (copy == NULL) fail(126, "reading -G");
  for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
    if (n == MAX_GROUPS) usage("too many supplementary groups");
    groups[n++] = (gid_t)number(item, 10, 0xfffffffeUL, "-G");
  }
  free(copy);
  return n;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The filter's bytes from hexadecimal: whole sock_filter instructions (8 bytes each). */
static struct sock_fprog parse_filter(const char *hex) {
  size_t length = strlen(hex);
  if (length == 0 || length % (2 * sizeof(struct sock_filter)) != 0) usage("-s: expected whole BPF instructions in hexadecimal");
  unsigned char *bytes = malloc(length / 2);
  if (bytes == NULL) fail(126, "reading -s");
  for (size_t i = 0; i < length / 2; i++) {
    int high = hex_digit(hex[2 * i]), low = hex_digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) usage("-s: not hexadecimal");
    bytes[i] = (unsigned char)(high << 4 | low);
  }
  size_t count = length / 2 / sizeof(struct sock_filter);
  if (count > BPF_MAXINSNS) usage("-s: longer than the kernel's limit of BPF_MAXINSNS instructions");
  return (struct sock_fprog){ .len = (unsigned short)count, .filter = (struct sock_filter *)bytes };
}

static void install_filter(struct sock_fprog *filter) {
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, filter) != 0) fail(126, "installing the seccomp filter");
}

/* The capabilities this process holds: its permitted set. */
static uint64_t held_capabilities(void) {
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) != 0) fail(126, "reading the capability sets");
  return (uint64_t)data[1].permitted << 32 | data[0].permitted;
}

/* Joins the user namespace that the parent holds as descriptor `fd`. */
static void join_user_namespace(int fd) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getppid(), fd);
  int ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) fail(126, "opening the container's user namespace (%s)", path);
  if (setns(ns, CLONE_NEWUSER) != 0) fail(126, "joining the container's user namespace");
  close(ns);
}

/* -H: the user namespace's holder, until the init has opened it. */
static int hold_user_namespace(void) {
  if (unshare(CLONE_NEWUSER) != 0) fail(1, "unshare(CLONE_NEWUSER)");
  if (puts("ready") == EOF || fflush(stdout) != 0) fail(1, "saying ready");
  while (getchar() != EOF) {}
  return 0;
}

int main(int argc, char **argv) {
  static gid_t groups[MAX_GROUPS];
  size_t group_count = 0;
  int set_groups = 0, set_ids = 0, set_caps = 0, no_new_privs = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t caps = 0;
  struct sock_fprog filter = { 0, NULL };
  int user_ns = -1;

  if (argc == 2 && strcmp(argv[1], "-H") == 0) return hold_user_namespace();
  int opt;
  while ((opt = getopt(argc, argv, "+U:u:g:G:c:ns:")) != -1) {
    switch (opt) {
      case 'U': user_ns = (int)number(optarg, 10, 1 << 20, "-U"); break;
      case 'u': uid = (uid_t)number(optarg, 10, 0xfffffffeUL, "-u"); set_ids |= 1; break;
      case 'g': gid = (gid_t)number(optarg, 10, 0xfffffffeUL, "-g"); set_ids |= 2; break;
      case 'G': group_count = parse_groups(optarg, groups); set_groups = 1; break;
      case 'c': caps = number(optarg, 16, ~0UL, "-c"); set_caps = 1; break;
      case 'n': no_new_privs = 1; break;
      case 's': filter = parse_filter(optarg); break;
      default: usage("unknown option");
    }
  }
  if (set_ids != 0 && set_ids != 3) usage("-u and -g go together");
  if (set_groups && !set_ids) usage("-G needs -u and -g");
  if (argc - optind < 2) usage("expected FILE and ARGV0 after the options");
  const char *file = argv[optind];
  char **target = &argv[optind + 1];

  /* Read before joining, which gives every capability inside the namespace: the process gets none the init lacks. */
  uint64_t held = held_capabilities();
  if (user_ns >= 0) {
    join_user_namespace(user_ns);
    set_ids = 3;
  }
  if (filter.filter != NULL && !no_new_privs) install_filter(&filter);

  if (set_caps) {
    caps &= held;
    /* PR_CAPBSET_READ fails (EINVAL) past the last capability the kernel knows. */
    for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
      if (!(caps >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) fail(126, "dropping capability %d from the bounding set", cap);
    }
  }
  if (set_ids) {
    /* Keep the permitted set across the change of user: capset below decides it. */
    if (set_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail(126, "prctl(PR_SET_KEEPCAPS, 1)");
    if (setgroups(group_count, groups) != 0) fail(126, "setting %zu supplementary groups", group_count);
    if (setresgid(gid, gid, gid) != 0) fail(126, "setting gid %u", (unsigned)gid);
    if (setresuid(uid, uid, uid) != 0) fail(126, "setting uid %u", (unsigned)uid);
    if (set_caps && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) fail(126, "prctl(PR_SET_KEEPCAPS, 0)");
  }
  if (set_caps) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2] = {
      { .effective = (uint32_t)caps, .permitted = (uint32_t)caps, .inheritable = 0 },
      { .effective = (uint32_t)(caps >> 32), .permitted = (uint32_t)(caps >> 32), .inheritable = 0 },
    };
    if (syscall(SYS_capset, &header, data) != 0) fail(126, "setting the capability sets to %llx", (unsigned long long)caps);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) fail(126, "clearing the ambient capabilities");
  }
  if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(126, "prctl(PR_SET_NO_NEW_PRIVS, 1)");
  if (filter.filter != NULL && no_new_privs) install_filter(&filter);

  execv(file, target);
  fail(errno == ENOENT ? 127 : 126, "executing %s", file);
}
