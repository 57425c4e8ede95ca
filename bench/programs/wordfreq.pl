#!/usr/bin/perl
# wordfreq.pl FILE — an allocation-heavy Perl program for bench/run: word and
# bigram frequencies of a text, with the string churn (lower-casing,
# splitting, joining, hash keys) typical of Perl text processing.  Prints one
# result line; deterministic for a given FILE.
use strict;
use warnings;

my $file = shift or die "usage: wordfreq.pl FILE\n";
open(my $in, '<', $file) or die "wordfreq.pl: cannot open $file: $!\n";
my (%words, %bigrams, %lengths);
my ($lines, $total) = (0, 0);
while (my $line = <$in>) {
    chomp $line;
    $lines++;
    my @w = split ' ', lc $line;
    $total += @w;
    for my $i (0 .. $#w) {
        $words{$w[$i]}++;
        $bigrams{"$w[$i-1] $w[$i]"}++ if $i > 0;
    }
    push @{ $lengths{scalar @w} }, join('-', reverse @w) if $lines % 4 == 0;
}
close $in;
my @top = (sort { $words{$b} <=> $words{$a} || $a cmp $b } keys %words)[0 .. 4];
my ($topb, $topn) = ('', 0);
while (my ($k, $n) = each %bigrams) {
    ($topb, $topn) = ($k, $n) if $n > $topn || ($n == $topn && $k lt $topb);
}
my $kept = 0;
$kept += @{ $lengths{$_} } for keys %lengths;
printf "wordfreq: lines=%d words=%d distinct=%d bigrams=%d kept=%d top=%s,%s check=ok\n",
    $lines, $total, scalar(keys %words), scalar(keys %bigrams), $kept, $top[0], $topb;
