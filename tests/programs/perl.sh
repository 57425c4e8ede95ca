#!/bin/bash
# perl under Kiln: hashes, sorting, string building, regular expressions.
. "$(dirname "$0")/common.sh"
require perl

workload() {
  perl -e '
    my %h;
    for my $i (1 .. 60000) { $h{"k$i"} = join(",", map { $_ * $i % 97 } 1 .. 10); }
    my @k = sort keys %h;
    print scalar(@k), " $k[0] $k[-1] $h{k12345}\n";
    delete $h{"k$_"} for grep { $_ % 3 } 1 .. 60000;
    print scalar(keys %h), "\n";
    my $s = join("", map { chr(65 + ($_ * 7) % 26) } 1 .. 300000);
    my @m = ($s =~ /HOV/g);
    print scalar(@m), " ", length($s), "\n";
    my @a = sort { $a <=> $b } map { ($_ * 7919) % 100003 } 1 .. 100000;
    print "$a[0] $a[50000] $a[-1]\n";
    my @strs = map { sprintf("%08x-%s", $_ * 2654435761 % 4294967296, "x" x ($_ % 30)) } 1 .. 40000;
    print join("|", (sort @strs)[0 .. 2]), "\n";
  '
}
run_workload
