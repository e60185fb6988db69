# tokenguard_prices FILE [FILE ...]: an operator's file over the generated
# table (a negotiated price, a private model, a default), and a bad layer
# failing nginx -t with its name and reason.
use strict;
use warnings;
use lib 't/lib';
use File::Temp qw(tempdir);
use Test::More;
use TG;

my $dir = tempdir('tg-prices-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $own = "$dir/own.json";
open my $f, '>', $own or die $!;
print $f '{"models": {"gpt-4o": {"input_mtok": 2, "output_mtok": 8},'
    . ' "llama-local": {"input_mtok": 0, "output_mtok": 0}},'
    . ' "default": {"input_mtok": 1, "output_mtok": 4}}';
close $f;

my $t = TG->new(http => "tokenguard_prices $TG::TOP/conf/prices.json $own;",
                location => 'tokenguard on; tokenguard_user $http_x_user;');

my %cost;
for my $m (qw(gpt-4o gpt-4o-2024-05-13 llama-local my-private-model)) {
    my $r = $t->post('/v1/chat/completions',
                     { model => $m, messages => [{ role => 'user',
                                                   content => 'hi' }] },
                     { 'X-User' => 'ops', 'X-Stub-Usage' => '1000,1000' });
    is($r->{status}, 200, "$m: admitted");
    $cost{$m} = $t->last_log->{cost_usd};
}

is($cost{'gpt-4o'}, '0.010000', 'a negotiated price wins over the table');
is($cost{'gpt-4o-2024-05-13'}, '0.020000',
   'what the layer does not name: the table ($5/$15)');
is($cost{'llama-local'}, '0.000000', 'a private model, free by contract');
is($cost{'my-private-model'}, '0.005000', 'the default');
$t->stop;

# a bad layer: nginx -t names the file and the fault
open $f, '>', "$dir/bad.json" or die $!;
print $f '{"models": {"gpt-4o": {"input_mtok": 2, "ouput_mtok": 8}}}';
close $f;

my $c = TG->new(no_redis => 1, no_start => 1,
                http => "tokenguard_prices $TG::TOP/conf/prices.json"
                        . " $dir/bad.json;",
                location => 'tokenguard on; tokenguard_user u;');
my ($rc, $out) = $c->nginx_test;
isnt($rc, 0, 'a bad layer fails nginx -t');
my $want = qq{tokenguard_prices "$dir/bad.json": price of "gpt-4o":}
           . ' unknown unit "ouput_mtok"';
like($out, qr/\Q$want\E/, 'it names the file, model and unit');
$c->stop_stub;

$c = TG->new(no_redis => 1, no_start => 1,
             http => "tokenguard_prices $own; tokenguard_prices $own;",
             location => 'tokenguard on; tokenguard_user u;');
($rc, $out) = $c->nginx_test;
like($out, qr/"tokenguard_prices" directive is duplicate/,
     'one tokenguard_prices, with every file on it');
$c->stop_stub;

done_testing;
