# Red team on reservations: an image answer of gemini-2.5-flash-image is
# billed $30 per 1M output tokens, a text one $2.50.  Four concurrent
# requests, each allowed 10,000 output tokens, under a $0.50 cap: reserved
# at the text rate ($0.025 each) all four are admitted and billed $1.20,
# past the cap; at the dearest output rate ($0.30 each) one is.
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
    tokenguard_cap user 0.5usd month;
});

my $body = encode_json({
    contents => [{ parts => [{ text => 'draw a cat' }] }],
    generationConfig => { maxOutputTokens => 10000,
                          responseModalities => ['IMAGE'] } });
my $path = '/v1beta/models/gemini-2.5-flash-image:generateContent';
my $usage = encode_json({ promptTokenCount => 4,
    candidatesTokenCount => 10000, totalTokenCount => 10004,
    candidatesTokensDetails => [{ modality => 'IMAGE',
                                  tokenCount => 10000 }] });
my %h = ('Content-Type' => 'application/json', 'X-User' => 'painter',
         'X-Stub-Delay-Ms' => 1500, 'X-Stub-Usage-Json' => $usage);

my @st = TG::concurrent([map { [$t, 'POST', $path, $body, \%h] } 1 .. 4],
                        60);
is(scalar(grep { $_ == 200 } @st), 1, 'one image request admitted')
    or diag("statuses: @st");
is(scalar(grep { $_ == 429 } @st), 3, 'three refused: each reserves at the'
   . ' image output rate');

my $key = "tg:{u:painter}:$month";
ok($t->wait_settled($key), 'settled');
# 4 x $0.30 per 1M input + 10,000 x $30 per 1M output
is($t->redis('HGET', $key, 'usd'), 300002, 'billed at the image rate');
cmp_ok($t->redis('HGET', $key, 'usd'), '<=', 500000, 'within the cap');

$t->stop;
done_testing;
