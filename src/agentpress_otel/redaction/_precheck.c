/* A sound pre-check in front of RE2 for short strings (issue 19): "no built-in detector can match this text".
 *
 * Redactor.redact is called once per log message and attribute value; on a clean 40-120 byte line the RE2 call
 * alone costs more than the per-string budget (its Python binding's fixed cost is most of it). This scan answers
 * "clean" for most such lines in one pass over the str's own ASCII bytes, and "maybe" otherwise (RE2 decides).
 *
 * It only ever looks for NECESSARY features of a match, so "clean" is safe:
 *   - a token prefix ("sk-", "AIza", "eyJ", "bearer" in any case, ...), given by configure();
 *   - ':' or '=' right after a sensitive key: the key's end (quotes and whitespace skipped backwards) is a key
 *     word followed by an optional tail ("_key", "value", one or two digits); both lists come from configure();
 *   - '@' (email, URL userinfo), '+' before a digit 1-9 (international phone), "(ddd)" (a US phone number);
 *   - in a chain of digit runs joined by single ' ', '-' or '.': the run lengths of a card number (14+ digits,
 *     or grouped 4-4-4-4 / 4-6-5 / 4-6-4 with ' ' or '-') or of a phone number ddd[.-]ddd[.-]dddd.
 * Non-ASCII text (or anything but a str) is "maybe": the old path repairs encodings and RE2 decides.
 * The needle tables and the proofs that they cover every detector live in _needles.py and
 * tests/unit/test_redaction_precheck.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_STRINGS 512
#define MAX_BYTES 8192
#define DIGIT_WILDCARD 0x01 /* in a key tail: any digit */
#define CARD_DIGITS 14     /* the shortest card number (Diners) */
#define CARD_MAX_DIGITS 19 /* the longest (Visa, JCB, Discover, UnionPay) */

enum { C_NONE = 0, C_TOKEN, C_SEP, C_AT, C_PLUS, C_PAREN, C_DIGIT };

/* A set of short strings, bucketed by one byte (first byte for tokens, last byte for key words and tails). */
typedef struct {
    unsigned char text[MAX_BYTES];
    Py_ssize_t used;
    unsigned short off[MAX_STRINGS], len[MAX_STRINGS];
    unsigned char ci[MAX_STRINGS];
    unsigned short bucket_start[257]; /* strings of bucket b: order[bucket_start[b] .. bucket_start[b+1]) */
    unsigned short order[MAX_STRINGS];
    int n;
} strset;

static strset tokens, keywords, tails;
static unsigned char cls[256];
static unsigned char pairs[65536]; /* 1 for byte pairs (a, b) where a needs a closer look; see configure() */
static int configured = 0;
/* The last three bytes (see code3) of every key ending a keyed detector accepts (key word + tail): most ':' and
 * '=' in logs follow other keys ("level", "model", "thread_id"), ruled out with one lookup. */
static unsigned char key_end3[32 * 32 * 32 / 8];

/* A key byte as 5 bits, case folded: letters 1-26, any digit 27, '_' 28, '-' 29, '.' 30; anything else 0. */
static inline unsigned code(unsigned char c) {
    unsigned l = c | 32u;
    if (l >= 'a' && l <= 'z') return l - 'a' + 1;
    if ((c >= '0' && c <= '9') || c == DIGIT_WILDCARD) return 27;
    return c == '_' ? 28 : c == '-' ? 29 : c == '.' ? 30 : 0;
}
static inline unsigned code3(const unsigned char *p) { return (code(p[0]) << 10) | (code(p[1]) << 5) | code(p[2]); }

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }
static inline int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Fill ``set`` from a tuple of (bytes, case_insensitive) pairs; ``by_last``: bucket by the last byte. */
static int fill(strset *set, PyObject *items, int by_last) {
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    unsigned short key[MAX_STRINGS];
    if (count > MAX_STRINGS) {
        PyErr_SetString(PyExc_ValueError, "too many needles");
        return -1;
    }
    memset(set, 0, sizeof(*set));
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(items, i);
        char *data;
        Py_ssize_t size;
        int ci;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            PyBytes_AsStringAndSize(PyTuple_GET_ITEM(pair, 0), &data, &size) < 0 ||
            (ci = PyObject_IsTrue(PyTuple_GET_ITEM(pair, 1))) < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "needles are (bytes, bool) pairs");
            return -1;
        }
        if (size < 1 || size > 64 || set->used + size > MAX_BYTES) {
            PyErr_SetString(PyExc_ValueError, "needle length must be 1..64 bytes");
            return -1;
        }
        set->off[i] = (unsigned short)set->used;
        set->len[i] = (unsigned short)size;
        set->ci[i] = (unsigned char)ci;
        for (Py_ssize_t k = 0; k < size; k++) {
            unsigned char c = (unsigned char)data[k];
            set->text[set->used + k] = ci ? lower(c) : c;
        }
        set->used += size;
        key[i] = set->text[set->off[i] + (by_last ? size - 1 : 0)];
    }
    set->n = (int)count;
    /* counting sort into buckets */
    unsigned short counts[257] = {0};
    for (int i = 0; i < set->n; i++) counts[key[i] + 1]++;
    for (int b = 0; b < 256; b++) counts[b + 1] += counts[b];
    memcpy(set->bucket_start, counts, sizeof(counts));
    for (int i = 0; i < set->n; i++) set->order[counts[key[i]]++] = (unsigned short)i;
    return 0;
}

/* Does string ``i`` of ``set`` occur in s[at .. at+len) (tokens) / end at s[end] (key parts)? */
static inline int same(const strset *set, int i, const unsigned char *s) {
    const unsigned char *p = set->text + set->off[i];
    int n = set->len[i];
    if (!set->ci[i]) return memcmp(p, s, (size_t)n) == 0;
    for (int k = 0; k < n; k++) {
        unsigned char c = lower(s[k]);
        if (p[k] == DIGIT_WILDCARD ? !is_digit(c) : p[k] != c) return 0;
    }
    return 1;
}

/* Does a token start at s[i]? (Its first two bytes passed the bigram filter.) */
static int token_at(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) {
    unsigned c = s[i];
    unsigned char b = lower((unsigned char)c);
    /* case-sensitive tokens are bucketed under their own first byte, case-insensitive ones under the lower case */
    for (int pass = 0; pass < 2; pass++) {
        unsigned char bucket = pass ? b : (unsigned char)c;
        if (pass && b == c) break;
        for (int j = tokens.bucket_start[bucket]; j < tokens.bucket_start[bucket + 1]; j++) {
            int t = tokens.order[j];
            if (i + tokens.len[t] <= n && same(&tokens, t, s + i)) return 1;
        }
    }
    return 0;
}

/* Does a string of ``set`` end exactly at s[end] (exclusive)? Calls back with each such start. */
static int keyword_ends_at(const unsigned char *s, Py_ssize_t end) {
    if (end <= 0) return 0;
    unsigned char b = lower(s[end - 1]);
    for (int j = keywords.bucket_start[b]; j < keywords.bucket_start[b + 1]; j++) {
        int t = keywords.order[j];
        if (keywords.len[t] <= end && same(&keywords, t, s + end - keywords.len[t])) return 1;
    }
    return 0;
}

static int tail_then_keyword(const unsigned char *s, Py_ssize_t end, unsigned char bucket) {
    for (int j = tails.bucket_start[bucket]; j < tails.bucket_start[bucket + 1]; j++) {
        int t = tails.order[j];
        Py_ssize_t start = end - tails.len[t];
        if (start >= 0 && same(&tails, t, s + start) && keyword_ends_at(s, start)) return 1;
    }
    return 0;
}

/* A ':' or '=' at s[i]: is it right after a sensitive key (then an optional quote and whitespace)? */
static int key_before(const unsigned char *s, Py_ssize_t i) {
    Py_ssize_t e = i;
    while (e > 0 && is_space(s[e - 1])) e--;
    if (e > 0 && (s[e - 1] == '"' || s[e - 1] == '\'')) {
        e--;
        if (e > 0 && s[e - 1] == '\\') e--;
    }
    if (e < 3) return 0; /* every key word has 3+ bytes */
    unsigned k3 = code3(s + e - 3);
    if (!(key_end3[k3 >> 3] & (1u << (k3 & 7)))) return 0;
    if (keyword_ends_at(s, e)) return 1; /* the empty tail */
    unsigned char b = lower(s[e - 1]);
    return tail_then_keyword(s, e, b) || (is_digit(b) && tail_then_keyword(s, e, DIGIT_WILDCARD));
}

/* Can a card number start right after byte c? The card pattern wants a non-word, non-'.' byte before it. */
static inline int card_may_follow(unsigned char c) {
    return !(is_digit(c) || c == '.' || c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z'));
}

/* The digit chain starting at s[i] (the first digit of a run): digit runs joined by single ' ', '-' or '.'.
 * Returns where it ends; sets *maybe when a card or phone number (without '+' or '(') could lie inside:
 *   - a card without separators: a run of 14 to 19 digits where a card may start (see card_may_follow), its
 *     first digit 2-6 (every issuer prefix of the pattern: 2221-2720, 3, 4, 5, 6);
 *   - a grouped card (4-4-4-4[-3], 4-6-5, 4-6-4): such a 4-digit run, then runs of 3 to 6 digits joined by
 *     ' ' or '-', 14+ digits in all;
 *   - a phone number ddd[.-]ddd[.-]dddd: runs of exactly 3, 3 and 4 digits joined by '.' or '-' (each group of
 *     the pattern is a whole run: \b or a separator on both sides). */
static Py_ssize_t digit_chain(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, int *maybe) {
    Py_ssize_t j = i;
    int grouped = -1;          /* digits of the grouped card candidate so far, -1: none */
    int g1 = 0, g2 = 0;        /* the two previous runs' lengths (0: none, or not joined by '.'/'-') */
    unsigned char sep = 0;     /* the separator before this run (0: the chain's first run) */
    int start_ok = i == 0 || card_may_follow(s[i - 1]);
    *maybe = 0;
    for (;;) {
        Py_ssize_t run = j;
        while (j < n && is_digit(s[j])) j++;
        int g = (int)(j - run);
        /* every issuer prefix starts with 2-6 */
        int issuer = start_ok && s[run] >= '2' && s[run] <= '6';
        if (issuer && g >= CARD_DIGITS && g <= CARD_MAX_DIGITS) *maybe = 1;
        if (grouped >= 0 && (sep == ' ' || sep == '-') && g >= 3 && g <= 6) {
            grouped += g;
            if (grouped >= CARD_DIGITS) *maybe = 1;
        } else {
            grouped = -1;
        }
        if (issuer && g == 4 && grouped < 4) grouped = 4;
        if (g1 == 3 && g2 == 3 && g == 4 && sep != ' ') *maybe = 1;
        if (sep == ' ') g2 = 0; /* a space never joins phone groups */
        g1 = g2;
        g2 = g;
        if (*maybe) return j;
        if (j + 1 < n && (s[j] == ' ' || s[j] == '-' || s[j] == '.') && is_digit(s[j + 1])) {
            sep = s[j];
            start_ok = sep != '.';
            j++;
            continue;
        }
        return j;
    }
}

#define PAIR(i) (pairs[((unsigned)s[i] << 8) | s[(i) + 1]])

/* 1: no built-in detector can match s[0..n); 0: maybe. */
static int scan(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (;;) {
        /* Most byte pairs need nothing (a token letter starting an ordinary word, a digit before a letter):
         * skip them four at a time. */
        while (i + 4 < n && !(PAIR(i) | PAIR(i + 1) | PAIR(i + 2) | PAIR(i + 3))) i += 4;
        while (i + 1 < n && !PAIR(i)) i++;
        if (i >= n) return 1;
        switch (cls[s[i]]) { /* s[i] starts an interesting pair, or is the last byte */
        case C_NONE:
            break;
        case C_TOKEN:
            if (token_at(s, i, n)) return 0;
            break;
        case C_SEP:
            if (key_before(s, i)) return 0;
            break;
        case C_AT:
            return 0;
        case C_PLUS:
            if (i + 1 < n && s[i + 1] >= '1' && s[i + 1] <= '9') return 0;
            break;
        case C_PAREN:
            if (i + 4 < n && is_digit(s[i + 1]) && is_digit(s[i + 2]) && is_digit(s[i + 3]) && s[i + 4] == ')')
                return 0;
            break;
        default: { /* C_DIGIT */
            int maybe;
            Py_ssize_t j = digit_chain(s, i, n, &maybe);
            if (maybe) return 0;
            i = j; /* s[j] is not part of the chain: look at it next */
            continue;
        }
        }
        i++;
    }
}

static PyObject *clean(PyObject *Py_UNUSED(module), PyObject *text) {
    if (!configured || !PyUnicode_CheckExact(text)) Py_RETURN_FALSE;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return NULL; /* a legacy string made by the deprecated C API (3.11) */
#endif
    if (!PyUnicode_IS_ASCII(text)) Py_RETURN_FALSE;
    if (scan(PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text))) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyObject *configure(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *tok, *kw, *tl, *tok_f = NULL, *kw_f = NULL, *tl_f = NULL, *result = NULL;
    if (!PyArg_ParseTuple(args, "OOO:configure", &tok, &kw, &tl)) return NULL;
    configured = 0;
    if (!(tok_f = PySequence_Fast(tok, "tokens must be a sequence")) ||
        !(kw_f = PySequence_Fast(kw, "keywords must be a sequence")) ||
        !(tl_f = PySequence_Fast(tl, "tails must be a sequence")))
        goto done;
    if (fill(&tokens, tok_f, 0) < 0 || fill(&keywords, kw_f, 1) < 0 || fill(&tails, tl_f, 1) < 0) goto done;
    memset(key_end3, 0, sizeof(key_end3));
    for (int w = 0; w < keywords.n; w++) {
        if (keywords.len[w] < 3) {
            PyErr_SetString(PyExc_ValueError, "key words need 3+ bytes");
            goto done;
        }
        for (int t = -1; t < tails.n; t++) { /* t = -1: no tail */
            unsigned char buf[128];
            int lw = keywords.len[w], lt = t < 0 ? 0 : tails.len[t];
            memcpy(buf, keywords.text + keywords.off[w], (size_t)lw);
            if (lt) memcpy(buf + lw, tails.text + tails.off[t], (size_t)lt);
            unsigned k3 = code3(buf + lw + lt - 3);
            key_end3[k3 >> 3] |= (unsigned char)(1u << (k3 & 7));
        }
    }
    memset(cls, C_NONE, sizeof(cls));
    memset(pairs, 0, sizeof(pairs));
    for (int t = 0; t < tokens.n; t++) {
        const unsigned char *p = tokens.text + tokens.off[t];
        if (p[0] == 0 || strchr(":=@+(0123456789", p[0]) != NULL) { /* those bytes have their own check in scan() */
            PyErr_SetString(PyExc_ValueError, "a token cannot start with NUL, ':', '=', '@', '+', '(' or a digit");
            goto done;
        }
        int firsts = tokens.ci[t] ? 2 : 1;
        for (int f = 0; f < firsts; f++) {
            unsigned a = f ? (unsigned)(p[0] >= 'a' && p[0] <= 'z' ? p[0] - 32 : p[0]) : p[0];
            cls[a] = C_TOKEN;
            if (tokens.len[t] == 1) { /* a one-byte token: every bigram starting with it */
                for (unsigned b = 0; b < 256; b++) pairs[(a << 8) | b] = 1;
                continue;
            }
            for (int g = 0; g < (tokens.ci[t] ? 2 : 1); g++) {
                unsigned b = p[1];
                if (g) b = (b >= 'a' && b <= 'z') ? b - 32 : b;
                unsigned two = (a << 8) | b;
                pairs[two] = 1;
            }
        }
    }
    /* Case-insensitive tokens are bucketed under their lower-case first byte (see token_at). */
    cls[':'] = cls['='] = C_SEP;
    cls['@'] = C_AT;
    cls['+'] = C_PLUS;
    cls['('] = C_PAREN;
    for (int d = '0'; d <= '9'; d++) cls[d] = C_DIGIT;
    /* The pairs scan() stops at, besides the tokens' first two bytes: ':', '=' and '@' before anything; '+' before
     * 1-9; '(' before a digit; a digit before a digit or a group separator (a lone digit before anything else is
     * a one-digit chain: never a card or phone number). */
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            int digit = b >= '0' && b <= '9';
            int hit = cls[a] == C_SEP || cls[a] == C_AT || (cls[a] == C_PLUS && digit && b != '0') ||
                      (cls[a] == C_PAREN && digit) ||
                      (cls[a] == C_DIGIT && (digit || b == ' ' || b == '-' || b == '.'));
            if (hit) pairs[(a << 8) | b] = 1;
        }
    }
    configured = 1;
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(tok_f);
    Py_XDECREF(kw_f);
    Py_XDECREF(tl_f);
    return result;
}

static PyMethodDef methods[] = {
    {"clean", clean, METH_O,
     "clean(text) -> bool: True only when no built-in detector can match text (an ASCII str); False: maybe."},
    {"configure", configure, METH_VARARGS,
     "configure(tokens, keywords, tails): set the needles, each a sequence of (bytes, case_insensitive) pairs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "agentpress_otel.redaction._precheck",
    "Sound pre-check in front of RE2 for short strings (see _needles.py).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__precheck(void) { return PyModule_Create(&module); }
