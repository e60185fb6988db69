#include <string.h>

#include "tap.h"
#include "tg_estimate.h"


void
test_estimate(void)
{
    is_int(tg_estimate_text_tokens("", 0), 0, "estimate: empty");
    is_int(tg_estimate_text_tokens("abcd", 4), 1, "estimate: 4 ascii bytes");
    is_int(tg_estimate_text_tokens("abcde", 5), 2, "estimate: rounds up");
    /* three CJK characters, 9 bytes */
    is_int(tg_estimate_text_tokens("\xe4\xbd\xa0\xe5\xa5\xbd\xe5\x90\x97", 9),
           3, "estimate: one token per non-ASCII character");
}
