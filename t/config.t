# Directives reject bad arguments at "nginx -t" time, naming the
# directive and the bad value.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use TG;

sub conf_error {
    my ($location, $like, $name) = @_;
    my $t = TG->new(location => $location, no_start => 1);
    my ($rc, $out) = $t->nginx_test;
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $like, "$name: message");
    $t->stop_stub;
}

sub conf_ok {
    my ($location, $name) = @_;
    my $t = TG->new(location => $location, no_start => 1);
    my ($rc, $out) = $t->nginx_test;
    is($rc, 0, "$name: nginx -t passes") or diag $out;
    $t->stop_stub;
}

conf_ok(q{tokenguard on; tokenguard_user $remote_user; tokenguard_team t;
          tokenguard_sandbox $arg_sandbox; tokenguard_provider gemini;
          tokenguard_allow_models ^gpt; tokenguard_deny_prompt x name=x;
          tokenguard_route ^(a)(b)$ $2$1 prompt~x prompt_tokens<5
          prompt_tokens>1 budget>=80% tools !tools stream !stream sandbox
          !sandbox tag=t.1;
          tokenguard_classify x summary; tokenguard_max_tokens_default 100;
          tokenguard_max_body 1m; tokenguard_include_usage off;
          tokenguard_headers off;}, 'every directive');

conf_error('tokenguard maybe;', qr/invalid value "maybe" in "tokenguard"/,
           'bad flag');
conf_error('tokenguard_provider azure;',
           qr/invalid value "azure" in "tokenguard_provider"/, 'bad provider');
conf_error('tokenguard_allow_models "(";',
           qr/invalid regular expression "\(" in "tokenguard_allow_models"/,
           'bad allow regex');
conf_error('tokenguard_allow_models a; tokenguard_allow_models b;',
           qr/"tokenguard_allow_models" directive is duplicate/,
           'duplicate allow_models');
conf_error('tokenguard_deny_prompt "[x";',
           qr/invalid regular expression "\[x" in "tokenguard_deny_prompt"/,
           'bad deny regex');
conf_error('tokenguard_deny_prompt x label=y;',
           qr/invalid parameter "label=y" in "tokenguard_deny_prompt"/,
           'bad deny parameter');
conf_error('tokenguard_route ^a$ b toolz;',
           qr/invalid condition "toolz" in "tokenguard_route" directive: unknown/,
           'unknown condition');
conf_error('tokenguard_route ^a$ b budget>=120%;',
           qr/invalid condition "budget>=120%".*percentage/,
           'bad budget');
conf_error('tokenguard_route ^a$ b prompt_tokens<many;',
           qr/invalid condition "prompt_tokens<many"/, 'bad token count');
conf_error('tokenguard_route ^a$ b "prompt~(";',
           qr/invalid regular expression "\(" in "tokenguard_route"/,
           'bad prompt~ regex');
conf_error('tokenguard_route ^a$ b$2;',
           qr/target "b\$2" in "tokenguard_route" directive uses \$2, but "\^a\$" has only 0/,
           'capture out of range');
conf_error('tokenguard_route ^a$ b$;', qr/invalid target "b\$"/,
           'bad target');
conf_error('tokenguard_route ^a$ b "tag=has space";',
           qr/invalid tag "has space"/, 'bad tag');
conf_error('tokenguard_route ^a$;',
           qr/invalid number of arguments in "tokenguard_route"/,
           'route needs a target');
conf_error('tokenguard_classify x "a b";', qr/invalid category "a b"/,
           'bad category');
conf_error('tokenguard_max_tokens_default 0;',
           qr/invalid value "0" in "tokenguard_max_tokens_default" directive, it must be from 1/,
           'max_tokens_default 0');
conf_error('tokenguard_max_tokens_default lots;',
           qr/"tokenguard_max_tokens_default" directive invalid number/,
           'max_tokens_default not a number');
conf_error('tokenguard_stored_input_tokens 10000001;',
           qr/invalid value "10000001" in "tokenguard_stored_input_tokens" directive, it must be from 0 to 10000000/,
           'stored_input_tokens over the bound');
conf_error('tokenguard_max_body huge;',
           qr/"tokenguard_max_body" directive invalid value/, 'bad size');
conf_error('tokenguard_user $no_such_var;',
           qr/unknown "no_such_var" variable/, 'unknown variable');

done_testing;
