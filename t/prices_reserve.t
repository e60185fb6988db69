# Reservations at the tier the prompt reaches: four concurrent 250k-token
# prompts to gemini-2.5-pro (tiered at 200k: $2.50 instead of $1.25 per
# 1M input) under a $1 cap.  At the tier each reserves $0.6265 and one is
# admitted; at the base rate ($0.3135) three would be, past the cap (as
# in LiteLLM PR #40002).
use strict;
use warnings;
use lib 't/lib';
use POSIX qw(strftime);
use JSON::PP;
use Test::More;
use TG;

my $month = strftime('%Y-%m', gmtime);

my $t = TG->new(location => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_cap user 1usd month;
    tokenguard_max_body 4m;
});

# one token a non-ASCII character: 250,000 tokens of prompt
my $body = JSON::PP->new->utf8->encode({
    contents => [{ parts => [{ text => "\x{e9}" x 250000 }] }],
    generationConfig => { maxOutputTokens => 100 } });
my $path = '/v1beta/models/gemini-2.5-pro:generateContent';
my %h = ('Content-Type' => 'application/json', 'X-User' => 'long',
         'X-Stub-Delay-Ms' => 1500, 'X-Stub-Usage' => '250000,100');

my @st = TG::concurrent([map { [$t, 'POST', $path, $body, \%h] } 1 .. 4],
                        60);
is(scalar(grep { $_ == 200 } @st), 1, 'one 250k-token request admitted');
is(scalar(grep { $_ == 429 } @st), 3, 'three refused: each reserves at the'
   . ' long-context rate') or diag("statuses: @st");

my $key = "tg:{u:long}:$month";
ok($t->wait_settled($key), 'settled');
# 250,000 x $2.50 + 100 x $15 per 1M
is($t->redis('HGET', $key, 'usd'), 626500, 'settled at the tier: $0.6265');

$t->stop;
done_testing;
