# tokenguardctl report: the audit page from real traffic.  One HTML file
# with nothing external, the sections and the numbers the traffic makes,
# the routine-versus-agentic share called out, inline SVG charts, names
# escaped; --json with the same numbers; then the page rendered by
# headless Chromium: a screenshot, the DOM after rendering, no console
# error.
use strict;
use warnings;
use lib 't/lib';
use File::Temp qw(tempdir);
use POSIX qw(strftime);
use Test::More;
use TG;

plan skip_all => "build/tokenguardctl is missing: run make ctl"
    unless -x $TG::CTL;

my $month = strftime('%Y-%m', gmtime);
my $day = strftime('%Y-%m-%d', gmtime);

my $t = TG->new(server => q{
    tokenguard on;
    tokenguard_user $http_x_user;
    tokenguard_team $http_x_team;
    tokenguard_sandbox $http_x_sandbox;
    tokenguard_sandbox_allowance 10usd month;
    tokenguard_classify "(?i)summar" summary;
    tokenguard_classify "(?i)translat" translation;
    location / {
        proxy_pass http://stub;
    }
    location /routed/ {
        tokenguard_route ^gpt-4o$ gpt-4o-mini tag=mini;
        proxy_pass http://stub/;
    }
});

sub chat {
    my ($path, $user, $usage, %o) = @_;
    my $body = { model => $o{model} // 'gpt-4o',
                 messages => [{ role => 'user',
                                content => $o{prompt} // 'hello there' }] };
    $body->{tools} = [{ type => 'function', function => { name => 'lookup',
                        parameters => { type => 'object' } } }] if $o{tools};
    my %h = ('X-User' => $user, 'X-Stub-Usage' => $usage);
    $h{'X-Team'} = $o{team} if $o{team};
    $h{'X-Sandbox'} = 1 if $o{sandbox};
    my $r = $t->post("$path/v1/chat/completions", $body, \%h);
    (my $k = $user) =~ s/([^A-Za-z0-9._\@-])/sprintf '%%%02X', ord $1/ge;
    (my $tk = $o{team} // '') =~ s/([^A-Za-z0-9._\@-])/sprintf '%%%02X', ord $1/ge;
    $t->wait_settled("tg:{u:$k}:$month");
    $t->wait_settled("tg:{t:$tk}:$month") if $o{team};
    return $r->{status};
}

sub usd_is {
    my ($got, $micro, $name) = @_;
    is(defined $got ? sprintf('%.6f', $got) : 'null',
       sprintf('%.6f', $micro / 1e6), $name);
}

# gpt-4o 2.5/10 per 1M, gpt-4o-mini 0.15/0.6; a hostile user and team name
my $evil = q{<script>alert("x")</script>};
my $rd = q{R&D 'core'};
my @traffic = (
    ['', 'alice', '1000000,100000', team => 'ml'],                # $3.50
    ['', 'alice', '200000,50000', team => 'ml',
     prompt => 'Summarize the minutes'],                          # $1.00
    ['', 'bob', '400000,20000', team => 'ml', tools => 1],        # $1.20
    ['', 'bob', '400000,20000', team => 'ml', tools => 1],        # $1.20
    ['/routed', 'carol', '1000000,100000', team => $rd],          # $0.21
    ['', $evil, '2000000,0', model => 'gpt-4o-mini',
     prompt => 'Translate this'],                                 # $0.30
    ['', 'alice', '100000,10000', sandbox => 1],                  # $0.35
);
for my $q (@traffic) {
    is(chat(@$q), 200, "traffic: $q->[1]");
}

# alice has a $5 monthly override: $4.50 is 90% of it; a sandbox grant
$t->redis('HSET', 'tg:{u:alice}:limits', 'usd_month', 5000000,
          'sandbox_usd_month', 1000000);

my $dir = tempdir('tg-report-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
my $html = "$dir/audit.html";

my $c = $t->ctl('report', '--period', $month, '--html', $html);
is($c->{rc}, 0, 'report: exit 0') or diag $c->{err};
like($c->{out}, qr/wrote \Q$html\E: \Q$month\E, total \$7\.76 in 4 users and 2 teams/,
     'report: says what it wrote');
ok(-s $html, 'report: the file');
my $page = do { local $/; open my $f, '<', $html or die; <$f> };

# self-contained
unlike($page, qr/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i,
       'no external src or href');
unlike($page, qr/<(?:script|link|iframe|img|object|embed)\b/i,
       'no script, link, iframe, img, object, embed');
unlike($page, qr/\@import|url\(/i, 'no CSS import or url()');
like($page, qr/^<!DOCTYPE html>/, 'HTML5');
like($page, qr/<meta charset="utf-8">/, 'utf-8');

# sections
for my $s (qw(summary work teams users models categories sandbox reroutes
              caps)) {
    like($page, qr/<section id="$s">/, "section $s");
}
like($page, qr/<h2>Spend by team<\/h2>/, 'heading: by team');
like($page, qr/<h2>Spend by user<\/h2>/, 'heading: by user');
like($page, qr/<h2>Spend by model<\/h2>/, 'heading: by model');
like($page, qr/<h2>Spend by category<\/h2>/, 'heading: by category');
like($page, qr/<h2>Reroutes and savings<\/h2>/, 'heading: reroutes');
like($page, qr/<h2>At or near a cap<\/h2>/, 'heading: near cap');

# the page as text: tags are spaces, entities decoded
(my $text = $page) =~ s/<[^>]+>/ /g;
my %ent = (amp => '&', lt => '<', gt => '>', quot => '"', '#39' => "'");
$text =~ s/&(amp|lt|gt|quot|#39);/$ent{$1}/g;
$text =~ s/\s+/ /g;

# numbers: total 7.41 + sandbox 0.35 = 7.76; routine = chat 3.5 + 0.21 +
# 0.35, summary 1.00, translation 0.30 = 5.36; agentic 2.40 (31%)
like($text, qr/Total spend \$7\.76 \$7\.41 under the caps \+ \$0\.35 sandbox/,
     'total spend');
like($text, qr/69% of spend went to routine work \(chat, summary, translation\) vs 31% agentic/,
     'routine versus agentic, called out');
like($page, qr/<p class="headline"><strong>69%<\/strong>/,
     'the share is the headline');
like($text, qr/Saved by rerouting \$3\.29 1 rerouted request/,
     'summary: saved by rerouting');
like($text, qr/Routing rules moved 1 request to cheaper models and saved \$3\.29/,
     'reroutes: the saving');
like($text, qr/gpt-4o gpt-4o-mini 1 \$3\.29/, 'reroutes: the pair');
like($text, qr/ ml \$6\.90 93% 4 2,000,000 190,000 - - /, 'team ml row');
like($text, qr/\Q$rd\E \$0\.21 3% 1/, 'team R&D row');
like($text, qr/\(no team\) \$0\.30 4%/, 'spend outside any team');
like($text, qr/alice \$4\.50 61% \$0\.35 2 1,200,000 150,000 \$5\.00 \(override\) 90%/,
     'user alice row, with her cap');
like($text, qr/bob \$2\.40 32% \$0\.00 2 800,000 40,000 - -/, 'user bob row');
like($text, qr/gpt-4o \$7\.25 93% 2,100,000 200,000/, 'model gpt-4o row');
like($text, qr/gpt-4o-mini \$0\.51 7% 3,000,000 100,000/, 'model mini row');
like($text, qr/chat routine \$4\.06 52% 3/, 'category chat row');
like($text, qr/agentic agentic \$2\.40 31% 2/, 'category agentic row');
like($text, qr/translation routine \$0\.30 4% 1/, 'category translation');
like($text, qr/alice \$0\.35 \$1\.00 35%/, 'sandbox against the grant');
like($text, qr/user alice usd_month \$5\.00 \(override\) \$4\.50 90%/,
     'alice is near her cap');
unlike($text, qr/user bob usd_month/, 'bob has no cap override');

# charts
my $svgs = () = $page =~ /<svg class="chart"/g;
ok($svgs >= 5, "inline SVG charts ($svgs)");
like($page, qr/<svg class="chart"[^>]*aria-label="Spend by team"/,
     'chart: spend by team');
like($page, qr/<svg class="chart"[^>]*aria-label="Spend by model"/,
     'chart: spend by model');
like($page, qr/<svg class="chart"[^>]*aria-label="Routine versus agentic spend"/,
     'chart: routine versus agentic');
my ($team_svg) = $page =~ /(<svg[^>]*aria-label="Spend by team".*?<\/svg>)/s;
like($team_svg, qr/<rect[^>]*width="420"/, 'team chart: the biggest bar');
like($team_svg, qr/>ml<\/text>/, 'team chart: ml labelled');

# names escaped everywhere
unlike($page, qr/<script>alert/, 'a hostile user name is not markup');
like($page, qr/&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;/,
     'a hostile user name, escaped');
like($page, qr/R&amp;D &#39;core&#39;/, 'a team name, escaped');
unlike($page, qr/R&D/, 'no raw ampersand from a name');

# --json: the same numbers
$c = $t->ctl('--json', 'report', '--period', $month);
is($c->{rc}, 0, 'report --json: exit 0');
my $j = $c->{json};
usd_is($j->{total_usd}, 7760000, 'json: total_usd');
usd_is($j->{spent_usd}, 7410000, 'json: spent_usd');
usd_is($j->{sandbox_usd}, 350000, 'json: sandbox_usd');
usd_is($j->{routine_usd}, 5360000, 'json: routine_usd');
usd_is($j->{agentic_usd}, 2400000, 'json: agentic_usd');
is($j->{agentic_share_pct}, 30.9, 'json: agentic_share_pct');
is($j->{users_count}, 4, 'json: users_count');
is_deeply([map { $_->{name} } @{ $j->{teams} }], ['ml', $rd], 'json: teams');
usd_is($j->{teams}[0]{spent_usd}, 6900000, 'json: team ml');
usd_is($j->{no_team_usd}, 300000, 'json: no_team_usd');
is_deeply([map { $_->{name} } @{ $j->{users} }],
          ['alice', 'bob', $evil, 'carol'], 'json: users by spend');
is_deeply([map { $_->{name} } @{ $j->{models} }], ['gpt-4o', 'gpt-4o-mini'],
          'json: models');
is_deeply([map { "$_->{name}:$_->{work}" } @{ $j->{categories} }],
          ['chat:routine', 'agentic:agentic', 'summary:routine',
           'translation:routine'], 'json: categories');
usd_is($j->{reroutes}{saved_usd}, 3290000, 'json: reroutes saved');
is($j->{reroutes}{requests}, 1, 'json: reroutes requests');
is($j->{reroutes}{pairs}[0]{requested}, 'gpt-4o', 'json: pair requested');
is($j->{reroutes}{pairs}[0]{routed}, 'gpt-4o-mini', 'json: pair routed');
is(scalar @{ $j->{near_cap} }, 1, 'json: one near the cap');
is($j->{near_cap}[0]{name}, 'alice', 'json: alice near the cap');
is($j->{near_cap}[0]{used_pct}, 90, 'json: 90%');
usd_is($j->{sandbox}[0]{allowance_usd}, 1000000, 'json: sandbox allowance');
for my $u (@{ $j->{users} }) {
    my $m = sprintf('$%.2f', $u->{spent_usd});
    my $n = $u->{name};
    $n =~ s/&/&amp;/g; $n =~ s/</&lt;/g; $n =~ s/>/&gt;/g; $n =~ s/"/&quot;/g;
    like($page, qr/<td>\Q$n\E<\/td><td class="r">\Q$m\E/,
         "html and json agree: $u->{name}");
}

# --html and --json together; -n; a day; an empty period
$c = $t->ctl('--json', 'report', '--html', "$dir/both.html", '-n', '1');
ok(-s "$dir/both.html", '--html with --json: the page');
is(scalar @{ $c->{json}{users} }, 1, '-n 1: one user in the JSON');
my $both = do { local $/; open my $f, '<', "$dir/both.html" or die; <$f> };
like($both, qr/Spend by user \(top 1 of 4\)/, '-n 1: the page says top 1');
like($both, qr/<td>3 more<\/td><td class="r">\$2\.91<\/td>/,
     '-n 1: the rest summed');

$c = $t->ctl('report', '--period', $day, '--html', "$dir/day.html");
my $dayp = do { local $/; open my $f, '<', "$dir/day.html" or die; <$f> };
like($dayp, qr/AI spend audit: \Q$day\E/, 'a day: title');
like($dayp, qr/\$7\.76/, 'a day: the same total');

$c = $t->ctl('report', '--period', '2001-01', '--html', "$dir/empty.html");
is($c->{rc}, 0, 'an empty period: exit 0');
my $empty = do { local $/; open my $f, '<', "$dir/empty.html" or die; <$f> };
like($empty, qr/No spend was recorded in this period/, 'empty: says so');
ok(scalar(() = $empty =~ /<svg/g) >= 5, 'empty: charts still drawn');

$c = $t->ctl('report', '--html', "$dir/no/such/dir/x.html");
is($c->{rc}, 1, 'an unwritable file: exit 1');
like($c->{err}, qr/cannot write \Q$dir\E\/no\/such\/dir\/x\.html/,
     'an unwritable file: says so');

# the page in a real browser
my $chromium = '/usr/bin/chromium';
my $why = '';
if (!-x $chromium) {
    if ($> == 0) {
        diag 'chromium is not installed: apt-get install -y chromium';
        system('DEBIAN_FRONTEND=noninteractive apt-get install -y -qq '
               . '--no-install-recommends chromium >/dev/null 2>&1 || '
               . '(apt-get update -qq >/dev/null 2>&1 && '
               . 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq '
               . '--no-install-recommends chromium >/dev/null 2>&1)');
        $why = 'chromium could not be installed (apt-get install -y '
               . 'chromium failed)' unless -x $chromium;
    } else {
        $why = 'chromium is not installed and this test is not root to '
               . 'apt-get install it';
    }
}

SKIP: {
    skip "the Chromium part: $why", 11 if $why;

    my @flags = ('--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-quic', '--no-first-run',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--disable-dev-shm-usage');

    # runs chromium on a file; returns (exit, stdout, stderr)
    my $run = sub {
        my ($file, @more) = @_;
        my $profile = tempdir('tg-chromium-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);
        my ($o, $e) = ("$dir/chromium.out", "$dir/chromium.err");
        my $pid = fork // die;
        if ($pid == 0) {
            open STDOUT, '>', $o or die;
            open STDERR, '>', $e or die;
            { exec 'timeout', '120', $chromium, @flags,
                   "--user-data-dir=$profile", @more, "file://$file"; }
            POSIX::_exit(127);
        }
        waitpid $pid, 0;
        my $rc = $? >> 8;
        my @r = map { local $/; open my $f, '<', $_ or die; scalar <$f> }
                ($o, $e);
        return ($rc, @r);
    };

    my $png = "$dir/audit.png";
    my ($rc, $out, $err) = $run->($html, "--screenshot=$png",
                                  '--window-size=1280,2000');
    is($rc, 0, 'chromium --screenshot: exit 0') or diag $err;
    ok(-s $png && -s $png > 20000, 'the screenshot PNG is not empty ('
       . (-s $png // 0) . ' bytes)');
    my $magic = do { open my $f, '<:raw', $png or die; read $f, my $b, 8; $b };
    is($magic, "\x89PNG\r\n\x1a\n", 'the screenshot is a PNG');

    ($rc, $out, $err) = $run->($html, '--dump-dom');
    is($rc, 0, 'chromium --dump-dom: exit 0');
    my $svg = () = $out =~ /<svg class="chart"/g;
    ok($svg >= 5, "the rendered DOM has the SVG charts ($svg)");
    my $rect = () = $out =~ /<rect /g;
    ok($rect >= 10, "the rendered DOM has the bars ($rect)");
    like($out, qr/of spend went to routine work/, 'the rendered DOM has the'
         . ' headline');
    unlike($out, qr/<script>alert/, 'no hostile markup after rendering');

    # the console check catches errors: a page that logs one is caught
    my $probe = "$dir/probe.html";
    open my $f, '>', $probe or die;
    print $f '<html><body><script>console.error("tg-probe")</script>'
             . '</body></html>';
    close $f;
    ($rc, $out, $err) = $run->($probe, '--enable-logging=stderr', '--v=0',
                               '--dump-dom');
    like($err, qr/CONSOLE.*tg-probe/, 'the console log is read (a probe '
         . 'page\'s error is seen)');

    ($rc, $out, $err) = $run->($html, '--enable-logging=stderr', '--v=0',
                               '--dump-dom');
    is($rc, 0, 'chromium with logging: exit 0');
    my @console = grep { /CONSOLE|Uncaught/ } split /\n/, $err;
    ok(!@console, 'no console message or error for the page')
        or diag join "\n", @console;
}

$t->stop;
done_testing;
