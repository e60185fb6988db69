/*
 * Charts for the report, drawn as inline SVG by the tool: no script, no
 * external file, every label escaped.  Horizontal bars (one per team,
 * user, model ...) and a split bar (routine against agentic work).
 */

#include <string.h>

#include "tgc.h"


#define TGC_SVG_WIDTH     760
#define TGC_SVG_LABEL_W   190       /* labels end here */
#define TGC_SVG_BAR_X     200
#define TGC_SVG_BAR_W     420       /* the largest bar */
#define TGC_SVG_ROW       28
#define TGC_SVG_LABEL_MAX 26        /* characters of a label shown */


static const char  *tgc_palette[] = {
    "#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795",
    "#b7791f", "#718096"
};


/* at most max characters of a UTF-8 label, escaped; "…" if cut */
static void
tgc_svg_label(FILE *f, const char *s, size_t len, size_t max)
{
    size_t  i, chars;

    chars = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            if (chars == max) {
                break;
            }
            chars++;
        }
    }

    tgc_html_escape(f, s, i);

    if (i < len) {
        fputs("\xe2\x80\xa6", f);
    }
}


static void
tgc_svg_open(FILE *f, const char *title, int height)
{
    fprintf(f, "<svg class=\"chart\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
            TGC_SVG_WIDTH, height, TGC_SVG_WIDTH, height);
    tgc_html_escape(f, title, strlen(title));
    fputs("\"><title>", f);
    tgc_html_escape(f, title, strlen(title));
    fputs("</title>\n", f);
}


/* one bar per item, the longest for the largest value; shares of total */
void
tgc_svg_bars(FILE *f, const char *title, const tgc_bar_t *bars, size_t n,
    int64_t total)
{
    int          y, w;
    char         money[TGC_MONEY_LEN], pct[TGC_NUM_LEN];
    size_t       i;
    int64_t      max;
    const char  *color;

    max = 0;

    for (i = 0; i < n; i++) {
        if (bars[i].value > max) {
            max = bars[i].value;
        }
    }

    if (n == 0) {
        tgc_svg_open(f, title, 40);
        fputs("<text x=\"10\" y=\"25\" class=\"none\">No spend recorded."
              "</text>\n</svg>\n", f);
        return;
    }

    tgc_svg_open(f, title, (int) n * TGC_SVG_ROW + 12);

    for (i = 0; i < n; i++) {
        y = 6 + (int) i * TGC_SVG_ROW;
        w = max > 0 && bars[i].value > 0
            ? (int) ((double) bars[i].value * TGC_SVG_BAR_W / (double) max)
            : 0;

        if (w == 0 && bars[i].value > 0) {
            w = 1;
        }

        color = bars[i].color ? bars[i].color
                              : tgc_palette[i % (sizeof(tgc_palette)
                                                 / sizeof(tgc_palette[0]))];

        tgc_money(bars[i].value, money);
        tgc_pct(bars[i].value, total, pct);

        fprintf(f, "<g><text x=\"%d\" y=\"%d\" text-anchor=\"end\" "
                   "class=\"label\">", TGC_SVG_LABEL_W, y + 17);
        tgc_svg_label(f, bars[i].label, bars[i].len, TGC_SVG_LABEL_MAX);
        fprintf(f, "</text><rect x=\"%d\" y=\"%d\" width=\"%d\" "
                   "height=\"20\" rx=\"3\" fill=\"%s\"><title>",
                TGC_SVG_BAR_X, y + 3, w, color);
        tgc_html_escape(f, bars[i].label, bars[i].len);
        fprintf(f, ": %s (%s)</title></rect>"
                   "<text x=\"%d\" y=\"%d\" class=\"value\">%s (%s)</text>"
                   "</g>\n",
                money, pct, TGC_SVG_BAR_X + w + 6, y + 17, money, pct);
    }

    fputs("</svg>\n", f);
}


/* one bar split into parts, with a legend under it */
void
tgc_svg_split(FILE *f, const char *title, const tgc_bar_t *parts, size_t n)
{
    int          x, w, lx;
    char         money[TGC_MONEY_LEN], pct[TGC_NUM_LEN];
    size_t       i;
    int64_t      total;
    const char  *color;

    total = 0;

    for (i = 0; i < n; i++) {
        total += parts[i].value > 0 ? parts[i].value : 0;
    }

    tgc_svg_open(f, title, 80);

    if (total == 0) {
        fputs("<rect x=\"10\" y=\"8\" width=\"740\" height=\"30\" rx=\"4\" "
              "fill=\"#e2e8f0\"/><text x=\"20\" y=\"28\" class=\"none\">"
              "No spend recorded.</text>\n", f);
    }

    x = 10;
    lx = 10;

    for (i = 0; i < n; i++) {
        color = parts[i].color ? parts[i].color
                               : tgc_palette[i % (sizeof(tgc_palette)
                                                  / sizeof(tgc_palette[0]))];

        tgc_money(parts[i].value, money);
        tgc_pct(parts[i].value, total, pct);

        if (total > 0 && parts[i].value > 0) {
            w = (int) ((double) parts[i].value * 740 / (double) total + 0.5);
            if (w < 1) {
                w = 1;
            }
            if (x + w > 750) {
                w = 750 - x;
            }

            fprintf(f, "<rect x=\"%d\" y=\"8\" width=\"%d\" height=\"30\" "
                       "fill=\"%s\"><title>", x, w, color);
            tgc_html_escape(f, parts[i].label, parts[i].len);
            fprintf(f, ": %s (%s)</title></rect>\n", money, pct);

            if (w > 60) {
                fprintf(f, "<text x=\"%d\" y=\"28\" class=\"inbar\">%s"
                           "</text>\n", x + 8, pct);
            }

            x += w;
        }

        fprintf(f, "<rect x=\"%d\" y=\"54\" width=\"14\" height=\"14\" "
                   "fill=\"%s\"/><text x=\"%d\" y=\"66\" class=\"label\">",
                lx, color, lx + 20);
        tgc_svg_label(f, parts[i].label, parts[i].len, 40);
        fprintf(f, ": %s (%s)</text>\n", money, pct);

        lx += 370;
    }

    fputs("</svg>\n", f);
}
