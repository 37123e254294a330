# The container's process in `npm run bench -- pid1` (bench/pid1.ts): the
# same program under every init. Perl because every Debian system has it and
# it starts in a few milliseconds; a C compiler may be missing.
#
# It appends "KEY VALUE" lines to REPORT, making its directory where the
# root it sees lacks it (tether's guest gives it a root of its own); the bench
# reads it through PID 1's /proc/PID/root. Times are CLOCK_MONOTONIC in ns,
# the clock the bench reads with process.hrtime.bigint(), so the bench can
# subtract its own timestamps from them.
#
#   perl pid1Workload.pl exec  REPORT     "exec T" at once, then exit
#   perl pid1Workload.pl term  REPORT     "ready T", then "term T" when SIGTERM arrives
#   perl pid1Workload.pl storm REPORT N   leave N orphans to PID 1, then "start T",
#                                         "forked T" and "drained T"; then sleep
use strict;
use warnings;
use File::Basename ();
use File::Path ();
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($mode, $report, $orphans) = @ARGV;

sub now { sprintf '%.0f', clock_gettime(CLOCK_MONOTONIC) * 1e9 }

sub report {
  File::Path::make_path(File::Basename::dirname($report));
  open my $file, '>>', $report or die "$report: $!";
  print $file "@_\n";
  close $file;
}

# Orphans are handed to PID 1 in batches: a spawner forks BATCH children that
# exit at once, then exits itself, so its zombies are re-parented to PID 1
# together. Orphans keep arriving while the storm lasts, as from a busy
# container, at one fork per orphan (a double fork per orphan would spend
# twice the time in this process and show less of the init's).
my $BATCH = 100;

# Done when no process of the namespace is a zombie and no orphan is still
# running: every orphan and spawner has a PID above ours (PIDs are handed out
# upwards and a fresh namespace is far from the wrap), and /proc lists PIDs in
# ascending order, so the scan stops at the first one.
sub orphans_left {
  opendir my $proc, '/proc' or die "/proc: $!";
  while (defined(my $entry = readdir $proc)) {
    next unless $entry =~ /^\d+$/ && $entry != $$;
    return 1 if $entry > $$;
    open my $stat, '<', "/proc/$entry/stat" or next;
    return 1 if <$stat> =~ /\) Z /;
  }
  return 0;
}

sub storm {
  require POSIX;
  my $start = now();
  for (my $left = $orphans; $left > 0; $left -= $BATCH) {
    my $spawner = fork // die "fork: $!";
    if ($spawner == 0) {
      for (1 .. ($left < $BATCH ? $left : $BATCH)) {
        my $pid = fork // POSIX::_exit(1);
        POSIX::_exit(0) if $pid == 0;
      }
      POSIX::_exit(0);
    }
    waitpid $spawner, 0;
    die "a spawner could not fork (out of PIDs?)\n" if $? != 0;
  }
  my $forked = now();
  select undef, undef, undef, 0.001 while orphans_left();
  report('start', $start);
  report('forked', $forked);
  report('drained', now());
  # Alive until the bench has read PID 1's peak memory and kills the namespace.
  sleep;
}

if ($mode eq 'exec') {
  report('exec', now());
} elsif ($mode eq 'term') {
  $SIG{TERM} = sub { report('term', now()); exit 0 };
  report('ready', now());
  sleep while 1;
} elsif ($mode eq 'storm') {
  eval { storm(); 1 } or do { report('error', $@ =~ s/\s+$//r); exit 1 };
} else {
  die "usage: $0 exec|term|storm REPORT [ORPHANS]\n";
}
