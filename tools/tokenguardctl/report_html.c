/*
 * The report as one self-contained HTML page: styles inline, charts as
 * inline SVG (svg.c), no script, no external file or link, every name
 * escaped.  Written to FILE.tmp.XXXXXX and renamed, so a reader never
 * sees half a page.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tgc.h"


#define TGC_CHART_MAX  20           /* bars in one chart */


static const char  tgc_css[] =
"body{margin:0;background:#f7fafc;color:#1a202c;"
"font:15px/1.45 -apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
"sans-serif}\n"
"main{max-width:1080px;margin:0 auto;padding:24px 32px 48px}\n"
"h1{font-size:28px;margin:8px 0 4px}\n"
"h2{font-size:20px;margin:0 0 12px;padding-bottom:6px;"
"border-bottom:2px solid #e2e8f0}\n"
".sub{color:#4a5568;margin:0 0 20px}\n"
"section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;"
"padding:18px 22px;margin:0 0 20px}\n"
".cards{display:flex;flex-wrap:wrap;gap:12px}\n"
".card{flex:1 1 150px;background:#edf2f7;border-radius:6px;"
"padding:12px 14px}\n"
".card .k{font-size:13px;color:#4a5568;text-transform:uppercase;"
"letter-spacing:.04em}\n"
".card .v{font-size:24px;font-weight:700}\n"
".card .n{font-size:13px;color:#4a5568}\n"
".headline{font-size:22px;margin:4px 0 14px;padding:14px 18px;"
"background:#fffbea;border-left:6px solid #dd6b20;border-radius:4px}\n"
".headline strong{font-size:28px}\n"
"table{border-collapse:collapse;width:100%;margin:12px 0 4px;"
"font-size:14px}\n"
"th,td{padding:5px 10px;border-bottom:1px solid #e2e8f0;text-align:left}\n"
"th{background:#edf2f7;font-weight:600}\n"
"td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}\n"
"tr:nth-child(even) td{background:#f7fafc}\n"
".note{color:#4a5568;font-size:13px}\n"
".warn{color:#c53030;font-weight:700}\n"
"svg.chart{display:block;max-width:100%;height:auto;margin:6px 0}\n"
"svg .label{font-size:13px;fill:#2d3748}\n"
"svg .value{font-size:12px;fill:#4a5568}\n"
"svg .inbar{font-size:14px;font-weight:700;fill:#fff}\n"
"svg .none{font-size:14px;fill:#718096}\n"
"footer{color:#4a5568;font-size:13px}\n"
"@media print{body{background:#fff}section{break-inside:avoid}}\n";


static const char  *tgc_months[] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December"
};


static void
tgc_esc(FILE *f, const char *s)
{
    tgc_html_escape(f, s, strlen(s));
}


static void
tgc_th(FILE *f, const char *head, const char *align)
{
    size_t  i;

    fputs("<table><thead><tr>", f);

    for (i = 0; align[i]; i++) {
        fprintf(f, "<th%s>", align[i] == 'r' ? " class=\"r\"" : "");
        tgc_esc(f, head);
        head += strlen(head) + 1;
        fputs("</th>", f);
    }

    fputs("</tr></thead><tbody>\n", f);
}


/* one cell: text (escaped), right-aligned for numbers */
static void
tgc_td(FILE *f, const char *s, size_t len, int right)
{
    fputs(right ? "<td class=\"r\">" : "<td>", f);
    tgc_html_escape(f, s, len);
    fputs("</td>", f);
}


static void
tgc_tds(FILE *f, const char *s, int right)
{
    tgc_td(f, s, strlen(s), right);
}


static void
tgc_section(FILE *f, const char *id, const char *title)
{
    fprintf(f, "<section id=\"%s\">\n<h2>", id);
    tgc_esc(f, title);
    fputs("</h2>\n", f);
}


static void
tgc_card(FILE *f, const char *k, const char *v, const char *note)
{
    fputs("<div class=\"card\"><div class=\"k\">", f);
    tgc_esc(f, k);
    fputs("</div><div class=\"v\">", f);
    tgc_esc(f, v);
    fputs("</div><div class=\"n\">", f);
    tgc_esc(f, note);
    fputs("</div></div>\n", f);
}


static void
tgc_html_summary(FILE *f, tgc_report_t *r)
{
    char                 a[TGC_MONEY_LEN], b[TGC_MONEY_LEN], note[128],
                         n1[TGC_NUM_LEN], n2[TGC_NUM_LEN];
    const tgc_period_t  *t;

    t = &r->agg.total;

    fputs("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">"
          "\n", f);

    snprintf(note, sizeof(note), "%s under the caps + %s sandbox",
             tgc_money(r->spent_usd, a), tgc_money(r->sandbox_usd, b));
    tgc_card(f, "Total spend", tgc_money(r->total_usd, a), note);

    snprintf(note, sizeof(note), "%s denied, %s with estimated usage",
             tgc_num(t->denied, n1), tgc_num(t->estimated, n2));
    tgc_card(f, "Requests", tgc_num(t->requests, a), note);

    snprintf(note, sizeof(note), "%s in, %s out (sandbox apart)",
             tgc_num(t->tokens_in, n1), tgc_num(t->tokens_out, n2));
    tgc_num(t->tokens_in + t->tokens_out, a);
    tgc_card(f, "Tokens", a, note);

    snprintf(note, sizeof(note), "%s rerouted request%s",
             tgc_num(t->rerouted, n1), t->rerouted == 1 ? "" : "s");
    tgc_card(f, "Saved by rerouting", tgc_money(t->saved_usd, a), note);

    snprintf(note, sizeof(note), "%zu user%s, %zu team%s", r->agg.users.n,
             r->agg.users.n == 1 ? "" : "s", r->agg.teams.n,
             r->agg.teams.n == 1 ? "" : "s");
    snprintf(a, sizeof(a), "%zu", r->agg.users.n);
    tgc_card(f, "People", a, note);

    fputs("</div>\n</section>\n", f);
}


/* "87%" and "13%" adding up to 100, "<1%" for a sliver */
static void
tgc_split_pct(int64_t part, int64_t other, char *p, char *q)
{
    int64_t  total, x;

    total = part + other;
    x = (int64_t) ((double) part * 100.0 / (double) total + 0.5);

    if (x == 0 && part > 0) {
        strcpy(p, "<1%");
        strcpy(q, other > 0 ? ">99%" : "0%");
        return;
    }

    if (x == 100 && other > 0) {
        strcpy(p, ">99%");
        strcpy(q, "<1%");
        return;
    }

    snprintf(p, TGC_NUM_LEN, "%lld%%", (long long) x);
    snprintf(q, TGC_NUM_LEN, "%lld%%", (long long) (100 - x));
}


static void
tgc_html_work(FILE *f, tgc_report_t *r)
{
    int                  shown;
    char                 p[TGC_NUM_LEN], q[TGC_NUM_LEN];
    size_t               i, more;
    tgc_bar_t            parts[2];
    const tgc_item_t    *it;
    const tgc_list_t    *cats;

    cats = &r->agg.total.cats;

    tgc_section(f, "work", "Routine versus agentic work");

    if (r->routine_usd + r->agentic_usd == 0) {
        fputs("<p class=\"headline\">No spend was recorded in this period."
              "</p>\n", f);

    } else {
        tgc_split_pct(r->routine_usd, r->agentic_usd, p, q);

        fprintf(f, "<p class=\"headline\"><strong>%s</strong> of spend went "
                   "to routine work (", p);

        shown = 0;
        more = 0;

        for (i = 0; i < cats->n; i++) {
            it = &cats->items[i];

            if (tgc_category_agentic(it->name, it->len) || it->usd == 0) {
                continue;
            }

            if (shown == 3) {
                more++;
                continue;
            }

            fputs(shown++ ? ", " : "", f);
            tgc_html_escape(f, it->name, it->len);
        }

        if (shown == 0) {
            fputs("none", f);
        }

        if (more) {
            fprintf(f, " and %zu more", more);
        }

        fprintf(f, ") vs <strong>%s</strong> agentic.</p>\n", q);
    }

    parts[0].label = "Routine work";
    parts[0].len = 12;
    parts[0].value = r->routine_usd;
    parts[0].color = "#2b6cb0";
    parts[1].label = "Agentic work";
    parts[1].len = 12;
    parts[1].value = r->agentic_usd;
    parts[1].color = "#dd6b20";

    tgc_svg_split(f, "Routine versus agentic spend", parts, 2);

    fputs("<p class=\"note\">Agentic work is a request with tools or tool "
          "results; routine work is every other category (chat, and each "
          "<code>tokenguard_classify</code> category such as summaries or "
          "translation). Sandbox spend is included.</p>\n</section>\n", f);
}


static int64_t
tgc_sum(const tgc_list_t *l)
{
    size_t   i;
    int64_t  t;

    for (t = 0, i = 0; i < l->n; i++) {
        t += l->items[i].usd;
    }

    return t;
}


static tgc_bar_t *
tgc_bars(const tgc_list_t *l, size_t max, size_t *n)
{
    size_t      i;
    tgc_bar_t  *b;

    b = calloc(max + 1, sizeof(tgc_bar_t));
    if (b == NULL) {
        *n = 0;
        return NULL;
    }

    for (i = 0; i < l->n && i < max; i++) {
        b[i].label = l->items[i].name;
        b[i].len = l->items[i].len;
        b[i].value = l->items[i].usd;
    }

    *n = i;

    return b;
}


static void
tgc_cap_cells(FILE *f, const tgc_item_t *it)
{
    char  a[TGC_MONEY_LEN];

    char  cs[TGC_MONEY_LEN + 16];

    if (it->cap_usd >= 0) {
        snprintf(cs, sizeof(cs), "%s (%s)", tgc_money(it->cap_usd, a),
                 it->cap_source);
        tgc_tds(f, cs, 1);
        snprintf(a, sizeof(a), "%lld%%", (long long) it->used_pct);
        fprintf(f, "<td class=\"r%s\">%s</td>",
                it->used_pct >= TGC_NEAR_PCT ? " warn" : "", a);

    } else {
        tgc_tds(f, "-", 1);
        tgc_tds(f, "-", 1);
    }
}


static void
tgc_html_scopes(FILE *f, tgc_report_t *r, int users)
{
    char               a[TGC_MONEY_LEN], title[96];
    size_t             i, n;
    int64_t            rest, base;
    tgc_bar_t         *bars;
    const tgc_list_t  *l;
    const tgc_item_t  *it;

    l = users ? &r->agg.users : &r->agg.teams;
    base = users ? r->spent_usd : r->team_base_usd;

    if (l->n > r->top_n) {
        snprintf(title, sizeof(title), "Spend by %s (top %zu of %zu)",
                 users ? "user" : "team", r->top_n, l->n);

    } else {
        snprintf(title, sizeof(title), "Spend by %s", users ? "user"
                                                            : "team");
    }

    tgc_section(f, users ? "users" : "teams", title);

    bars = tgc_bars(l, r->top_n < TGC_CHART_MAX ? r->top_n : TGC_CHART_MAX,
                    &n);

    if (!users && r->no_team_usd > 0 && bars) {
        bars[n].label = "(no team)";
        bars[n].len = 9;
        bars[n].value = r->no_team_usd;
        bars[n].color = "#a0aec0";
        n++;
    }

    tgc_svg_bars(f, title, bars, n, base);
    free(bars);

    if (users) {
        tgc_th(f, "User\0Spent\0Share\0Sandbox\0Requests\0Tokens in\0"
                  "Tokens out\0Limit\0Used", "lrrrrrrrr");
    } else {
        tgc_th(f, "Team\0Spent\0Share\0Requests\0Tokens in\0Tokens out\0"
                  "Limit\0Used", "lrrrrrrr");
    }

    rest = 0;

    for (i = 0; i < l->n; i++) {
        it = &l->items[i];

        if (i >= r->top_n) {
            rest += it->usd;
            continue;
        }

        fputs("<tr>", f);
        tgc_td(f, it->name, it->len, 0);
        tgc_tds(f, tgc_money(it->usd, a), 1);
        tgc_tds(f, tgc_pct(it->usd, base, a), 1);
        if (users) {
            tgc_tds(f, tgc_money(it->sandbox_usd, a), 1);
        }
        tgc_tds(f, tgc_num(it->requests, a), 1);
        tgc_tds(f, tgc_num(it->tokens_in, a), 1);
        tgc_tds(f, tgc_num(it->tokens_out, a), 1);
        tgc_cap_cells(f, it);
        fputs("</tr>\n", f);
    }

    if (l->n > r->top_n) {
        fprintf(f, "<tr><td>%zu more</td>", l->n - r->top_n);
        tgc_tds(f, tgc_money(rest, a), 1);
        tgc_tds(f, tgc_pct(rest, base, a), 1);
        fprintf(f, "<td colspan=\"%d\"></td></tr>\n", users ? 6 : 5);
    }

    if (!users && r->no_team_usd > 0) {
        fputs("<tr><td><em>(no team)</em></td>", f);
        tgc_tds(f, tgc_money(r->no_team_usd, a), 1);
        tgc_tds(f, tgc_pct(r->no_team_usd, base, a), 1);
        fputs("<td colspan=\"5\"></td></tr>\n", f);
    }

    if (l->n == 0) {
        fprintf(f, "<tr><td colspan=\"%d\">No %s recorded in this period."
                   "</td></tr>\n", users ? 9 : 8, users ? "user" : "team");
    }

    fputs("</tbody></table>\n", f);

    if (users) {
        fputs("<p class=\"note\">Spent is what the caps see; sandbox spend "
              "is apart. Limit is the USD cap that applies: an ops override "
              "(<code>tokenguardctl limit</code>), else the one nginx.conf "
              "applied, as the module recorded it.</p>\n", f);
    } else {
        fputs("<p class=\"note\">Team spend excludes sandbox requests (they "
              "are the user's alone); <em>(no team)</em> is spend of "
              "requests that named no team.</p>\n", f);
    }

    fputs("</section>\n", f);
}


static void
tgc_html_models(FILE *f, tgc_report_t *r)
{
    char               a[TGC_MONEY_LEN];
    size_t             i, n;
    int64_t            total;
    tgc_bar_t         *bars;
    const tgc_list_t  *l;
    const tgc_item_t  *it;

    l = &r->agg.total.models;
    total = tgc_sum(l);

    tgc_section(f, "models", "Spend by model");

    bars = tgc_bars(l, TGC_CHART_MAX, &n);
    tgc_svg_bars(f, "Spend by model", bars, n, total);
    free(bars);

    tgc_th(f, "Model\0Spent\0Share\0Tokens in\0Tokens out", "lrrrr");

    for (i = 0; i < l->n; i++) {
        it = &l->items[i];
        fputs("<tr>", f);
        tgc_td(f, it->name, it->len, 0);
        tgc_tds(f, tgc_money(it->usd, a), 1);
        tgc_tds(f, tgc_pct(it->usd, total, a), 1);
        tgc_tds(f, tgc_num(it->tokens_in, a), 1);
        tgc_tds(f, tgc_num(it->tokens_out, a), 1);
        fputs("</tr>\n", f);
    }

    if (l->n == 0) {
        fputs("<tr><td colspan=\"5\">No model was used in this period."
              "</td></tr>\n", f);
    }

    fputs("</tbody></table>\n<p class=\"note\">By the model that went "
          "upstream, after routing; sandbox spend included.</p>\n"
          "</section>\n", f);
}


static void
tgc_html_categories(FILE *f, tgc_report_t *r)
{
    char               a[TGC_MONEY_LEN];
    size_t             i, n;
    int64_t            total;
    tgc_bar_t         *bars;
    const tgc_list_t  *l;
    const tgc_item_t  *it;

    l = &r->agg.total.cats;
    total = tgc_sum(l);

    tgc_section(f, "categories", "Spend by category");

    bars = tgc_bars(l, TGC_CHART_MAX, &n);
    for (i = 0; i < n; i++) {
        bars[i].color = tgc_category_agentic(bars[i].label, bars[i].len)
                        ? "#dd6b20" : "#2b6cb0";
    }
    tgc_svg_bars(f, "Spend by category", bars, n, total);
    free(bars);

    tgc_th(f, "Category\0Work\0Spent\0Share\0Requests", "llrrr");

    for (i = 0; i < l->n; i++) {
        it = &l->items[i];
        fputs("<tr>", f);
        tgc_td(f, it->name, it->len, 0);
        tgc_tds(f, tgc_category_agentic(it->name, it->len) ? "agentic"
                                                           : "routine", 0);
        tgc_tds(f, tgc_money(it->usd, a), 1);
        tgc_tds(f, tgc_pct(it->usd, total, a), 1);
        tgc_tds(f, tgc_num(it->requests, a), 1);
        fputs("</tr>\n", f);
    }

    if (l->n == 0) {
        fputs("<tr><td colspan=\"5\">No request was counted in this "
              "period.</td></tr>\n", f);
    }

    fputs("</tbody></table>\n</section>\n", f);
}


static void
tgc_html_sandbox(FILE *f, tgc_report_t *r)
{
    char               a[TGC_MONEY_LEN];
    size_t             i;
    const tgc_item_t  *it;

    tgc_section(f, "sandbox", "Sandbox use against allowances");

    fprintf(f, "<p>Experiments (requests marked by "
               "<code>tokenguard_sandbox</code>) spent <strong>");
    tgc_esc(f, tgc_money(r->sandbox_usd, a));
    fputs("</strong> this period, apart from the caps.</p>\n", f);

    tgc_th(f, "User\0Sandbox spent\0Allowance\0Used", "lrrr");

    for (i = 0; i < r->sandbox.n; i++) {
        it = &r->sandbox.items[i];
        fputs("<tr>", f);
        tgc_td(f, it->name, it->len, 0);
        tgc_tds(f, tgc_money(it->usd, a), 1);

        if (it->cap_usd >= 0) {
            tgc_tds(f, tgc_money(it->cap_usd, a), 1);

        } else {
            tgc_tds(f, it->field ? "none (override)"
                                 : "from nginx.conf or none", 1);
        }

        if (it->used_pct >= 0) {
            snprintf(a, sizeof(a), "%lld%%", (long long) it->used_pct);
            fprintf(f, "<td class=\"r%s\">%s</td>",
                    it->used_pct >= TGC_NEAR_PCT ? " warn" : "", a);

        } else {
            tgc_tds(f, "-", 1);
        }

        fputs("</tr>\n", f);
    }

    if (r->sandbox.n == 0) {
        fputs("<tr><td colspan=\"4\">No sandbox use and no sandbox "
              "allowance override in this period.</td></tr>\n", f);
    }

    fputs("</tbody></table>\n<p class=\"note\">The allowance shown is an "
          "ops override (<code>tokenguardctl sandbox grant</code>); an "
          "allowance set with <code>tokenguard_sandbox_allowance</code> in "
          "nginx.conf is not in Redis.</p>\n</section>\n", f);
}


static void
tgc_html_reroutes(FILE *f, tgc_report_t *r)
{
    char                 a[TGC_MONEY_LEN];
    size_t               i;
    const char          *arrow;
    const tgc_item_t    *it;
    const tgc_period_t  *t;

    t = &r->agg.total;

    tgc_section(f, "reroutes", "Reroutes and savings");

    fprintf(f, "<p class=\"headline\">Routing rules moved <strong>%s"
               "</strong> request%s to cheaper models and saved <strong>",
            tgc_num(t->rerouted, a), t->rerouted == 1 ? "" : "s");
    tgc_esc(f, tgc_money(t->saved_usd, a));
    fputs("</strong>.</p>\n", f);

    tgc_th(f, "Requested\0Routed to\0Requests\0Saved", "llrr");

    for (i = 0; i < t->reroutes.n; i++) {
        it = &t->reroutes.items[i];
        arrow = strstr(it->name, "->");

        fputs("<tr>", f);

        if (arrow) {
            tgc_td(f, it->name, (size_t) (arrow - it->name), 0);
            tgc_td(f, arrow + 2, it->len - (size_t) (arrow + 2 - it->name),
                   0);

        } else {
            tgc_td(f, it->name, it->len, 0);
            tgc_tds(f, "", 0);
        }

        tgc_tds(f, tgc_num(it->requests, a), 1);
        tgc_tds(f, tgc_money(it->saved_usd, a), 1);
        fputs("</tr>\n", f);
    }

    if (t->reroutes.n == 0) {
        fputs("<tr><td colspan=\"4\">No request was rerouted in this "
              "period.</td></tr>\n", f);
    }

    fputs("</tbody></table>\n<p class=\"note\">Saved is what the requested "
          "model would have cost for the same tokens minus what the routed "
          "model cost.</p>\n</section>\n", f);
}


/* tokenguard_dry_run: who enforcing would refuse, what routes would save */
static void
tgc_html_dry(FILE *f, tgc_report_t *r)
{
    int                  k;
    char                 a[TGC_MONEY_LEN];
    size_t               i;
    const tgc_item_t    *it;
    const tgc_period_t  *t;

    t = &r->agg.total;

    tgc_section(f, "dry-run", "What enforcing would have done");

    fputs("<p>Requests that locations with <code>tokenguard_dry_run on</code>"
          " let through and would have refused, by who sent them and why "
          "(a caller without an identity is counted under the empty "
          "name).</p>\n", f);

    tgc_th(f, "Scope\0Name\0Would be refused\0Identity\0Policy\0Budget"
           "\0Sandbox", "llrrrrr");

    for (i = 0; i < r->dry.n; i++) {
        it = &r->dry.items[i];
        fputs("<tr>", f);
        tgc_tds(f, it->scope == TG_SCOPE_USER ? "user" : "team", 0);

        if (it->len) {
            tgc_td(f, it->name, it->len, 0);
        } else {
            tgc_tds(f, "(no identity)", 0);
        }

        for (k = 0; k < TGC_DRY_KINDS; k++) {
            tgc_tds(f, tgc_num(it->dry[k], a), 1);
        }

        fputs("</tr>\n", f);
    }

    if (r->dry.n == 0) {
        fputs("<tr><td colspan=\"7\">Dry-run would have refused nothing in "
              "this period.</td></tr>\n", f);
    }

    fputs("</tbody></table>\n", f);

    fputs("<p>Routes named but not applied in dry-run, and what applying "
          "them would have saved (the cost at the requested model minus the "
          "same usage at the route's target):</p>\n", f);

    tgc_th(f, "Route\0Requests\0Would save", "lrr");

    for (i = 0; i < t->routes.n; i++) {
        it = &t->routes.items[i];

        if (it->dry_requests == 0) {
            continue;
        }

        fputs("<tr>", f);
        tgc_td(f, it->name, it->len, 0);
        tgc_tds(f, tgc_num(it->dry_requests, a), 1);
        tgc_tds(f, tgc_money(it->dry_saved_usd, a), 1);
        fputs("</tr>\n", f);
    }

    fputs("</tbody></table>\n<p>Reroute savings by route (enforced):</p>\n",
          f);

    tgc_th(f, "Route\0Requests\0Saved", "lrr");

    for (i = 0; i < t->routes.n; i++) {
        it = &t->routes.items[i];

        if (it->requests == 0) {
            continue;
        }

        fputs("<tr>", f);
        tgc_td(f, it->name, it->len, 0);
        tgc_tds(f, tgc_num(it->requests, a), 1);
        tgc_tds(f, tgc_money(it->saved_usd, a), 1);
        fputs("</tr>\n", f);
    }

    fputs("</tbody></table>\n</section>\n", f);
}


static void
tgc_html_caps(FILE *f, tgc_report_t *r)
{
    char               a[TGC_MONEY_LEN], cs[TGC_MONEY_LEN + 16];
    size_t             i;
    const tgc_item_t  *it;

    tgc_section(f, "caps", "At or near a cap");

    fprintf(f, "<p>Users and teams that have used %d%% or more of a USD cap "
               "(<code>usd_month</code>, <code>usd_day</code>): an ops "
               "override, else the cap nginx.conf applied; spend in flight "
               "counts, as it does for the gateway.</p>\n", TGC_NEAR_PCT);

    tgc_th(f, "Scope\0Name\0Cap\0Limit\0Used\0Share used", "lllrrr");

    for (i = 0; i < r->near.n; i++) {
        it = &r->near.items[i];
        fputs("<tr>", f);
        tgc_tds(f, it->scope == TG_SCOPE_USER ? "user" : "team", 0);
        tgc_td(f, it->name, it->len, 0);
        tgc_tds(f, it->field, 0);
        snprintf(cs, sizeof(cs), "%s (%s)", tgc_money(it->cap_usd, a),
                 it->cap_source ? it->cap_source : "override");
        tgc_tds(f, cs, 1);
        tgc_tds(f, tgc_money(it->usd, a), 1);
        snprintf(a, sizeof(a), "%lld%%", (long long) it->used_pct);
        fprintf(f, "<td class=\"r warn\">%s</td></tr>\n", a);
    }

    if (r->near.n == 0) {
        fprintf(f, "<tr><td colspan=\"6\">Nobody is at %d%% of an ops-set "
                   "USD cap.</td></tr>\n", TGC_NEAR_PCT);
    }

    fputs("</tbody></table>\n<p class=\"note\">The module records the "
          "caps nginx.conf (<code>tokenguard_cap</code>) applied to a "
          "scope's requests in its period hash (<code>conf_usd</code> ...)."
          "</p>\n</section>\n", f);
}


static void
tgc_html_page(FILE *f, tgc_report_t *r)
{
    int          month;
    char         title[64];
    const char  *p;

    p = r->opts->period;
    month = (p[5] - '0') * 10 + (p[6] - '0');

    if (r->opts->period_day) {
        snprintf(title, sizeof(title), "AI spend audit: %s", p);

    } else {
        snprintf(title, sizeof(title), "AI spend audit: %s %.4s",
                 tgc_months[month - 1], p);
    }

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
          "<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, "
          "initial-scale=1\">\n<title>", f);
    tgc_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n"
               "<header>\n<h1>", tgc_css);
    tgc_esc(f, title);
    fprintf(f, "</h1>\n<p class=\"sub\">Period %s (%s) &middot; generated "
               "%s by tokenguardctl from the tokenguard ledger in Redis"
               "</p>\n</header>\n", p, tgc_period_kind(r->opts),
            r->generated);

    tgc_html_summary(f, r);
    tgc_html_work(f, r);
    tgc_html_scopes(f, r, 0);
    tgc_html_scopes(f, r, 1);
    tgc_html_models(f, r);
    tgc_html_categories(f, r);
    tgc_html_sandbox(f, r);
    tgc_html_reroutes(f, r);
    tgc_html_dry(f, r);
    tgc_html_caps(f, r);

    fputs("<footer><p>Money is counted to the micro-dollar and shown to the "
          "cent. Periods are UTC. Users and teams are those seen in the "
          "period (<code>tg:idx:PERIOD:users</code>, "
          "<code>:teams</code>).</p></footer>\n</main>\n</body>\n</html>\n",
          f);
}


int
tgc_report_html(tgc_report_t *r, const char *file)
{
    int      fd, err;
    char    *tmp;
    FILE    *f;
    mode_t   mask;
    size_t   len;

    len = strlen(file);
    tmp = malloc(len + sizeof(".tmp.XXXXXX"));
    if (tmp == NULL) {
        tgc_error("out of memory");
        return TGC_ERROR;
    }

    memcpy(tmp, file, len);
    memcpy(tmp + len, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));

    fd = mkstemp(tmp);
    if (fd == -1) {
        tgc_error("cannot write %s: %s", file, strerror(errno));
        free(tmp);
        return TGC_ERROR;
    }

    mask = umask(0);
    umask(mask);
    (void) fchmod(fd, 0666 & ~mask);

    f = fdopen(fd, "w");
    if (f == NULL) {
        err = errno;
        close(fd);
        unlink(tmp);
        tgc_error("cannot write %s: %s", file, strerror(err));
        free(tmp);
        return TGC_ERROR;
    }

    tgc_html_page(f, r);

    err = 0;

    if (fflush(f) != 0 || ferror(f)) {
        err = errno ? errno : EIO;
    }

    if (fclose(f) != 0 && err == 0) {
        err = errno;
    }

    if (err == 0 && rename(tmp, file) != 0) {
        err = errno;
    }

    if (err) {
        unlink(tmp);
        tgc_error("cannot write %s: %s", file, strerror(err));
        free(tmp);
        return TGC_ERROR;
    }

    free(tmp);

    return TGC_OK;
}
