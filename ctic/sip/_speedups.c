/*
 * ctic.sip._speedups: an optional C fast path for ctic.sip.parser.parse_message.
 *
 * Contract (see parse_message below): given the message bytes it returns
 * either the very Request/Response the pure-Python parser would build, or
 * None, meaning "let the Python parser decide".  It never raises
 * SIPParseError itself: every fault, and every form it does not handle
 * (bare-LF line ends, LWS inside a Via, quoted header parameters, non-ASCII
 * where Python's Unicode rules could matter, ...), returns None and the
 * Python path re-parses the message, so errors and their reasons, status
 * codes and raw headers are the Python path's by construction.  For Via and
 * name-addr values it does not handle, it calls the Python parser for that
 * one value (configure() hands it Via.parse and NameAddr.parse); an
 * exception from such a call also means None.
 *
 * It reads untrusted network input: every access is bounded by an explicit
 * length (NUL bytes are ordinary bytes), text is decoded as UTF-8 with
 * surrogateescape exactly as the Python path does, and the only buffer it
 * allocates (for unfolding continuation lines) is sized from the input.
 *
 * The rules mirrored here live in ctic/sip/parser.py, headers.py and uri.py;
 * the differential tests in tests/sip/test_speedups.py hold the two in step.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* --- character classes ---------------------------------------------------- */

#define C_TOKEN 0x01   /* RFC 3261 token: A-Za-z0-9 . ! % * _ + ` ' ~ - */
#define C_HOST 0x02    /* a Via/URI host name: A-Za-z0-9 _ . - */
#define C_SPACE 0x04   /* str.isspace() for the ASCII range */
#define C_URIBAD 0x08  /* what no URI may hold here: \s < > " and, to stay on
                          the safe side of Unicode's \s, every non-ASCII byte */
#define C_DIGIT 0x10
#define C_HEX 0x20
#define C_SCHEME 0x40 /* a URI scheme after its first letter: A-Za-z0-9 + . - */

static unsigned char cls[256];

#define IS(c, f) (cls[(unsigned char)(c)] & (f))

static void
init_classes(void)
{
    const char *tok = ".!%*_+`'~-";
    int c;
    for (c = 0; c < 256; c++) {
        unsigned char f = 0;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            f |= C_TOKEN | C_HOST;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '+' || c == '.' || c == '-')
            f |= C_SCHEME;
        if (c >= '0' && c <= '9')
            f |= C_DIGIT | C_HEX;
        if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            f |= C_HEX;
        if (c != 0 && strchr(tok, c) != NULL)
            f |= C_TOKEN;
        if (c == '_' || c == '.' || c == '-')
            f |= C_HOST;
        if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f))
            f |= C_SPACE | C_URIBAD;
        if (c == '<' || c == '>' || c == '"' || c >= 0x80)
            f |= C_URIBAD;
        cls[c] = f;
    }
}

static int
lower_ascii(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int
all_class(const char *p, Py_ssize_t n, int flag)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        if (!IS(p[i], flag))
            return 0;
    return 1;
}

static int
has_high(const char *p, Py_ssize_t n)
{
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return 1;
    return 0;
}

static const char *
find_byte(const char *p, const char *end, char c)
{
    if (p >= end)
        return NULL;
    return memchr(p, c, (size_t)(end - p));
}

/* ASCII case-insensitive equality with a lower-case literal. */
static int
eq_lower(const char *p, Py_ssize_t n, const char *lit)
{
    Py_ssize_t i;
    if ((Py_ssize_t)strlen(lit) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower_ascii((unsigned char)p[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* --- configuration, set once by ctic.sip.parser ------------------------------ */

enum {
    H_GENERIC, H_VIA, H_FROM, H_TO, H_CALLID, H_CSEQ, H_MAXFWD, H_CLEN,
    H_CONTACT, H_ROUTE, H_RROUTE, H_DATE, H_COUNT
};
static const char *const hot_names[H_COUNT] = {
    "", "via", "from", "to", "call-id", "cseq", "max-forwards", "content-length",
    "contact", "route", "record-route", "date",
};

static PyObject *hot_keys[H_COUNT];
static PyObject *compact_keys[128];
static int compact_kinds[128];

static PyObject *via_type, *nameaddr_type, *cseq_type, *headers_type, *request_type, *response_type;
static PyObject *via_parse, *nameaddr_parse, *uri_parse;
static PyObject *canonical;
static PyObject *empty_tuple;
static PyObject *s_transport, *s_host, *s_port, *s_params, *s_display, *s__uri, *s__uri_text;
static PyObject *s_seq, *s_method, *s__d, *s__names;

static int
hot_kind(const char *p, Py_ssize_t n)
{
    int k;
    for (k = 1; k < H_COUNT; k++)
        if (eq_lower(p, n, hot_names[k]))
            return k;
    return H_GENERIC;
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *types[6], *parsers[3], *canon, *compact;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int i;

    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOO!O!:configure",
                          &types[0], &types[1], &types[2], &types[3], &types[4], &types[5],
                          &parsers[0], &parsers[1], &parsers[2],
                          &PyDict_Type, &canon, &PyDict_Type, &compact))
        return NULL;
    for (i = 0; i < 6; i++) {
        if (!PyType_Check(types[i])) {
            PyErr_SetString(PyExc_TypeError, "configure: expected classes");
            return NULL;
        }
    }
    for (i = 0; i < 3; i++) {
        if (!PyCallable_Check(parsers[i])) {
            PyErr_SetString(PyExc_TypeError, "configure: expected callables");
            return NULL;
        }
    }
    for (i = 0; i < 128; i++) {
        Py_CLEAR(compact_keys[i]);
        compact_kinds[i] = H_GENERIC;
    }
    while (PyDict_Next(compact, &pos, &key, &value)) {
        Py_ssize_t klen, vlen;
        const char *k, *v;
        if (!PyUnicode_Check(key) || !PyUnicode_Check(value)) {
            PyErr_SetString(PyExc_TypeError, "configure: COMPACT must map str to str");
            return NULL;
        }
        k = PyUnicode_AsUTF8AndSize(key, &klen);
        if (k == NULL)
            return NULL;
        v = PyUnicode_AsUTF8AndSize(value, &vlen);
        if (v == NULL)
            return NULL;
        if (klen != 1 || k[0] < 'a' || k[0] > 'z') {
            PyErr_SetString(PyExc_ValueError, "configure: compact forms must be one lower-case letter");
            return NULL;
        }
        Py_INCREF(value);
        compact_keys[(int)k[0]] = value;
        compact_kinds[(int)k[0]] = hot_kind(v, vlen);
    }
    Py_XSETREF(via_type, Py_NewRef(types[0]));
    Py_XSETREF(nameaddr_type, Py_NewRef(types[1]));
    Py_XSETREF(cseq_type, Py_NewRef(types[2]));
    Py_XSETREF(headers_type, Py_NewRef(types[3]));
    Py_XSETREF(request_type, Py_NewRef(types[4]));
    Py_XSETREF(response_type, Py_NewRef(types[5]));
    Py_XSETREF(via_parse, Py_NewRef(parsers[0]));
    Py_XSETREF(nameaddr_parse, Py_NewRef(parsers[1]));
    Py_XSETREF(uri_parse, Py_NewRef(parsers[2]));
    Py_XSETREF(canonical, Py_NewRef(canon));
    Py_RETURN_NONE;
}

/* --- small builders ------------------------------------------------------------ */

/* Text exactly as the Python path decodes it: UTF-8 with surrogateescape.
 * Every span cut here starts and ends next to an ASCII delimiter, so
 * decoding the span equals slicing the decoded whole. */
static PyObject *
mkstr(const char *p, Py_ssize_t n)
{
    return PyUnicode_DecodeUTF8(p, n, "surrogateescape");
}

/* Lower- (or upper-) cased ASCII text; the caller has checked it is ASCII. */
static PyObject *
mkstr_case(const char *p, Py_ssize_t n, int upper)
{
    PyObject *s = PyUnicode_New(n, 127);
    Py_UCS1 *out;
    Py_ssize_t i;
    if (s == NULL)
        return NULL;
    out = PyUnicode_1BYTE_DATA(s);
    for (i = 0; i < n; i++) {
        int c = (unsigned char)p[i];
        if (upper)
            out[i] = (Py_UCS1)((c >= 'a' && c <= 'z') ? c - 32 : c);
        else
            out[i] = (Py_UCS1)lower_ascii(c);
    }
    return s;
}

/* cls.__new__(cls), as the Python fast paths do. */
static PyObject *
new_instance(PyObject *type)
{
    PyTypeObject *t = (PyTypeObject *)type;
    return t->tp_new(t, empty_tuple, NULL);
}

/* Fill the slots of a fresh instance; steals every value (a NULL value
 * means its builder failed).  On failure obj is released too. */
static PyObject *
fill_slots(PyObject *obj, int count, PyObject *const *names, PyObject **values)
{
    int i, ok = obj != NULL;
    for (i = 0; i < count; i++) {
        if (ok && (values[i] == NULL || PyObject_SetAttr(obj, names[i], values[i]) < 0))
            ok = 0;
        Py_XDECREF(values[i]);
    }
    if (!ok) {
        Py_XDECREF(obj);
        return NULL;
    }
    return obj;
}

/* Call a Python parser for one value.  An Exception from it (its
 * SIPParseError included) becomes a bail-out: NULL with no error set. */
static PyObject *
call_fallback(PyObject *fn, const char *p, Py_ssize_t n, PyObject *extra)
{
    PyObject *text = mkstr(p, n);
    PyObject *result;
    if (text == NULL)
        return NULL;
    if (extra != NULL)
        result = PyObject_CallFunctionObjArgs(fn, text, extra, NULL);
    else
        result = PyObject_CallOneArg(fn, text);
    Py_DECREF(text);
    if (result == NULL && PyErr_ExceptionMatches(PyExc_Exception))
        PyErr_Clear();
    return result;
}

/* Every function below that returns a PyObject * or int follows one rule:
 * NULL (or -1) with an exception set is a real error (memory), NULL (or -1)
 * with none set is "the Python path must decide". */
#define BAIL_NULL return NULL
#define BAIL_INT return -1

/* --- parameters ----------------------------------------------------------------- */

/* headers._split_params: "a=b;c" (leading ';' already gone) into a dict. */
static PyObject *
split_params(const char *p, Py_ssize_t n)
{
    const char *end = p + n, *part = p;
    PyObject *params = PyDict_New();
    if (params == NULL)
        return NULL;
    for (;;) {
        const char *semi = find_byte(part, end, ';');
        const char *pend = semi ? semi : end;
        const char *eq = find_byte(part, pend, '=');
        const char *nend = eq ? eq : pend;
        PyObject *k, *v;
        int r;
        if (nend == part || has_high(part, nend - part))
            goto bail;  /* empty parameter or name; non-ASCII names: str.lower() */
        k = mkstr_case(part, nend - part, 0);
        if (k == NULL)
            goto error;
        if (eq) {
            v = mkstr(eq + 1, pend - eq - 1);
            if (v == NULL) {
                Py_DECREF(k);
                goto error;
            }
        }
        else
            v = Py_NewRef(Py_None);
        r = PyDict_SetItem(params, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (r < 0)
            goto error;
        if (semi == NULL)
            break;
        part = semi + 1;
    }
    return params;
bail:
    Py_DECREF(params);
    BAIL_NULL;
error:
    Py_DECREF(params);
    return NULL;
}

/* headers.parse_params when it takes its fast path; *slow is set when the
 * Python path would use its LWS/quote-aware regex instead. */
static PyObject *
header_params(const char *p, Py_ssize_t n, int *slow)
{
    Py_ssize_t i;
    *slow = 0;
    if (n == 0)
        return PyDict_New();
    for (i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == ' ' || p[i] == '\t') {
            *slow = 1;
            BAIL_NULL;
        }
    }
    if (p[0] != ';')
        BAIL_NULL;
    return split_params(p + 1, n - 1);
}

/* --- Via ------------------------------------------------------------------------ */

static PyObject *
parse_via(const char *p, Py_ssize_t n)
{
    const char *end = p + n, *sp, *rest, *semi, *hp_end, *colon;
    PyObject *params = NULL, *port = NULL;
    long portval = -1;

    /* Via.parse's canonical-form test; anything else goes to its regex. */
    if (n < 8 || memcmp(p, "SIP/2.0/", 8) != 0 || find_byte(p, end, ' ') == NULL
        || find_byte(p, end, '\t') || find_byte(p, end, '"') || find_byte(p, end, '['))
        return call_fallback(via_parse, p, n, NULL);
    sp = find_byte(p + 8, end, ' ');
    if (sp == NULL)
        return call_fallback(via_parse, p, n, NULL);
    rest = sp + 1;
    if (find_byte(rest, end, ' '))
        return call_fallback(via_parse, p, n, NULL);
    semi = find_byte(rest, end, ';');
    hp_end = semi ? semi : end;
    colon = find_byte(rest, hp_end, ':');
    if (colon) {
        Py_ssize_t plen = hp_end - colon - 1, i;
        if (plen < 1 || plen > 5 || !all_class(colon + 1, plen, C_DIGIT))
            BAIL_NULL;  /* (non-ASCII digits: Python's isdigit/int decide) */
        portval = 0;
        for (i = 0; i < plen; i++)
            portval = portval * 10 + (colon[1 + i] - '0');
        if (portval > 65535)
            BAIL_NULL;
    }
    else
        colon = hp_end;
    if (colon == rest || !all_class(rest, colon - rest, C_HOST)
        || sp == p + 8 || !all_class(p + 8, sp - p - 8, C_TOKEN))
        BAIL_NULL;
    if (semi) {
        params = split_params(semi + 1, end - semi - 1);
        if (params == NULL)
            return NULL;
    }
    else if ((params = PyDict_New()) == NULL)
        return NULL;
    if (portval >= 0) {
        if ((port = PyLong_FromLong(portval)) == NULL)
            goto error;
    }
    else
        port = Py_NewRef(Py_None);
    {
        PyObject *names[4] = {s_transport, s_host, s_port, s_params};
        PyObject *values[4];
        values[0] = mkstr_case(p + 8, sp - p - 8, 1);
        values[1] = mkstr(rest, colon - rest);
        values[2] = port;
        values[3] = params;
        return fill_slots(new_instance(via_type), 4, names, values);
    }
error:
    Py_XDECREF(params);
    Py_XDECREF(port);
    return NULL;
}

/* --- name-addr -------------------------------------------------------------------- */

/* headers._URI_SHAPE: scheme ":" then one or more non-space, non-<>" chars. */
static int
uri_shape_ok(const char *p, Py_ssize_t n)
{
    Py_ssize_t i = 1;
    if (n < 3 || !((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')))
        return 0;
    while (i < n && IS(p[i], C_SCHEME))
        i++;
    if (i >= n || p[i] != ':' || i + 1 >= n)
        return 0;
    for (i++; i < n; i++)
        if (IS(p[i], C_URIBAD))
            return 0;
    return 1;
}

/* headers._DISPLAY_TOKENS: tokens separated by SP/HT runs. */
static int
display_tokens_ok(const char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (;;) {
        Py_ssize_t start = i;
        while (i < n && IS(p[i], C_TOKEN))
            i++;
        if (i == start)
            return 0;
        if (i == n)
            return 1;
        start = i;
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        if (i == start || i == n)
            return 0;
    }
}

static const char *
skip_sp_ht(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static PyObject *
parse_nameaddr(const char *p, Py_ssize_t n, int allow_star)
{
    const char *end = p + n, *uri, *uri_end, *rest, *disp = NULL, *disp_end = NULL;
    PyObject *params;
    int slow;

    if (n <= 0)
        BAIL_NULL;  /* an empty value is not a name-addr */
    if (p[0] == '<') {
        uri = p + 1;
        uri_end = find_byte(uri, end, '>');
        if (uri_end == NULL)
            BAIL_NULL;
        rest = skip_sp_ht(uri_end + 1, end);
    }
    else if (p[0] == '"') {
        /* _NA_QUOTED: a quoted string (backslash escapes any char), LWS, <URI>. */
        const char *q = p + 1;
        for (;;) {
            if (q >= end)
                BAIL_NULL;
            if (*q == '\\') {
                if (q + 1 >= end)
                    BAIL_NULL;
                q += 2;
            }
            else if (*q == '"')
                break;
            else
                q++;
        }
        disp = p;
        disp_end = q + 1;
        q = skip_sp_ht(disp_end, end);
        if (q >= end || *q != '<')
            BAIL_NULL;
        uri = q + 1;
        for (q = uri; q < end && *q != '<' && *q != '>'; q++)
            ;
        if (q >= end || *q != '>')
            BAIL_NULL;
        uri_end = q;
        rest = skip_sp_ht(q + 1, end);
    }
    else if (find_byte(p, end, '<')) {
        /* _NA_ANGLE: an unquoted display name (tokens), <URI>. */
        const char *lt = find_byte(p, end, '<'), *q;
        if (find_byte(p, lt, '"'))
            BAIL_NULL;
        disp = p;
        disp_end = lt;
        while (disp_end > disp && (disp_end[-1] == ' ' || disp_end[-1] == '\t'))
            disp_end--;
        if (disp_end == disp)
            disp = NULL;
        else if (!display_tokens_ok(disp, disp_end - disp))
            BAIL_NULL;
        uri = lt + 1;
        for (q = uri; q < end && *q != '<' && *q != '>'; q++)
            ;
        if (q >= end || *q != '>')
            BAIL_NULL;
        uri_end = q;
        rest = skip_sp_ht(q + 1, end);
    }
    else {
        /* addr-spec: parameters after it are header parameters. */
        const char *semi;
        if (n == 1 && p[0] == '*' && allow_star)
            return call_fallback(nameaddr_parse, p, n, Py_True);
        semi = find_byte(p, end, ';');
        uri = p;
        uri_end = semi ? semi : end;
        while (uri_end > uri && (uri_end[-1] == ' ' || uri_end[-1] == '\t'))
            uri_end--;
        if (find_byte(uri, uri_end, '?') || find_byte(uri, uri_end, ','))
            BAIL_NULL;
        rest = semi ? semi : end;
    }
    if (!uri_shape_ok(uri, uri_end - uri))
        BAIL_NULL;
    {
        /* One URI grammar: the URI is parsed by uri.parse_uri now, as
         * NameAddr.parse does; a rejection bails out to the Python path,
         * which raises the SIPParseError (a 400). */
        PyObject *uri_obj = call_fallback(uri_parse, uri, uri_end - uri, NULL);
        if (uri_obj == NULL)
            return NULL;
        params = header_params(rest, end - rest, &slow);
        if (params == NULL) {
            Py_DECREF(uri_obj);
            if (slow && !PyErr_Occurred())
                return call_fallback(nameaddr_parse, p, n, allow_star ? Py_True : Py_False);
            return NULL;
        }
        PyObject *names[4] = {s__uri, s__uri_text, s_display, s_params};
        PyObject *values[4];
        values[0] = uri_obj;
        values[1] = Py_NewRef(Py_None);
        values[2] = disp ? mkstr(disp, disp_end - disp) : Py_NewRef(Py_None);
        values[3] = params;
        return fill_slots(new_instance(nameaddr_type), 4, names, values);
    }
}

/* --- CSeq --------------------------------------------------------------------------- */

static PyObject *
parse_cseq(const char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0, ws;
    unsigned long long seq = 0;
    while (i < n && IS(p[i], C_DIGIT))
        seq = seq * 10 + (unsigned long long)(p[i++] - '0');
    if (i == 0 || i > 10 || seq > 0xFFFFFFFFULL)
        BAIL_NULL;
    ws = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i == ws || i == n || !all_class(p + i, n - i, C_TOKEN))
        BAIL_NULL;
    {
        PyObject *names[2] = {s_seq, s_method};
        PyObject *values[2];
        values[0] = PyLong_FromUnsignedLongLong(seq);
        values[1] = mkstr(p + i, n - i);
        return fill_slots(new_instance(cseq_type), 2, names, values);
    }
}

/* --- comma lists ----------------------------------------------------------------------- */

static int
parse_part(const char *p, Py_ssize_t n, int kind, PyObject *values)
{
    PyObject *item;
    int r;
    if (kind == H_VIA)
        item = parse_via(p, n);
    else
        item = parse_nameaddr(p, n, kind == H_CONTACT);
    if (item == NULL)
        return -1;
    r = PyList_Append(values, item);
    Py_DECREF(item);
    return r;
}

/* headers.split_commas (commas outside quotes and <>; parts stripped of
 * SP/HT; an empty part is an error), each part parsed and appended. */
static int
parse_list(const char *p, Py_ssize_t n, int kind, PyObject *values)
{
    const char *start = p;
    Py_ssize_t i;
    int quoted = 0, angle = 0;
    if (find_byte(p, p + n, ',') == NULL)
        return parse_part(p, n, kind, values);
    for (i = 0; i <= n; i++) {
        const char *a, *b;
        if (i < n) {
            char c = p[i];
            if (quoted) {
                if (c == '\\' && i + 1 < n)
                    i++;  /* the escaped character */
                else if (c == '"')
                    quoted = 0;
                continue;
            }
            if (c == '"')
                quoted = 1;
            else if (c == '<')
                angle = 1;
            else if (c == '>')
                angle = 0;
            if (c != ',' || angle)
                continue;
        }
        a = start;
        b = p + i;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a == b)
            BAIL_INT;
        if (parse_part(a, b - a, kind, values) < 0)
            return -1;
        start = p + i + 1;
    }
    return 0;
}

/* --- the Request-URI -------------------------------------------------------------------- */

/* parser._RURI_SIP after "sip:"/"sips:": [userinfo@] host [:port] *(;param) [?headers]. */
static int
ruri_rest_ok(const char *p, const char *end)
{
    const char *q = p;
    if (q < end && *q == '[') {
        q++;
        while (q < end && (IS(*q, C_HEX) || *q == ':' || *q == '.'))
            q++;
        if (q == p + 1 || q >= end || *q != ']')
            return 0;
        q++;
    }
    else {
        while (q < end && IS(*q, C_HOST))
            q++;
        if (q == p)
            return 0;
    }
    if (q < end && *q == ':') {
        const char *d = ++q;
        while (q < end && IS(*q, C_DIGIT))
            q++;
        /* [0-9]{1,4} | [1-5][0-9]{4} | 6[0-4][0-9]{3} | 65[0-4][0-9]{2}
         * | 655[0-2][0-9] | 6553[0-5], followed by ';', '?' or the end. */
        if (q - d < 1 || q - d > 5)
            return 0;
        if (q - d == 5 && !(d[0] >= '1' && d[0] <= '5') && !(d[0] == '6' && memcmp(d, "65535", 5) <= 0))
            return 0;
    }
    while (q < end && *q == ';') {
        const char *name = ++q;
        while (q < end && !IS(*q, C_URIBAD) && *q != ';' && *q != '=' && *q != '?')
            q++;
        if (q == name)
            return 0;
        if (q < end && *q == '=') {
            q++;
            while (q < end && !IS(*q, C_URIBAD) && *q != ';' && *q != '?')
                q++;
        }
    }
    if (q < end && *q == '?') {
        for (q++; q < end; q++)
            if (IS(*q, C_URIBAD))
                return 0;
    }
    return q == end;
}

static int
ruri_sip_ok(const char *p, Py_ssize_t n)
{
    const char *end = p + n, *q, *at;
    if (has_high(p, n))
        return 0;  /* Unicode \s: leave it to the regex */
    q = p + (p[3] == ':' ? 4 : 5);
    at = find_byte(q, end, '@');
    if (at != NULL && at > q && *q != ':') {  /* an empty user (sip::pw@h) is no URI */
        const char *u;
        for (u = q; u < at && !IS(*u, C_URIBAD); u++)
            ;
        if (u == at && ruri_rest_ok(at + 1, end))
            return 1;
    }
    return ruri_rest_ok(q, end);
}

/* --- the start line ----------------------------------------------------------------------- */

typedef struct {
    int is_request;
    PyObject *a;  /* method, or status (int) */
    PyObject *b;  /* Request-URI (text, or URI object), or reason */
} start_line;

static int
parse_start(const char *p, Py_ssize_t n, start_line *out)
{
    const char *end = p + n, *sp1, *sp2;
    out->a = out->b = NULL;
    if (n >= 4 && has_high(p, 4))
        BAIL_INT;  /* str.upper() maps some non-ASCII letters to S, I, P */
    if (n >= 4 && eq_lower(p, 4, "sip/")) {
        const char *code, *code_end;
        sp1 = find_byte(p, end, ' ');
        if (sp1 == NULL || !eq_lower(p, sp1 - p, "sip/2.0"))
            BAIL_INT;
        code = sp1 + 1;
        sp2 = find_byte(code, end, ' ');
        code_end = sp2 ? sp2 : end;
        if (code_end - code != 3 || code[0] < '1' || code[0] > '6'
            || !IS(code[1], C_DIGIT) || !IS(code[2], C_DIGIT))
            BAIL_INT;
        out->is_request = 0;
        out->a = PyLong_FromLong((code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0'));
        if (out->a == NULL)
            return -1;
        out->b = sp2 ? mkstr(sp2 + 1, end - sp2 - 1) : PyUnicode_New(0, 0);
        return out->b == NULL ? -1 : 0;
    }
    sp1 = find_byte(p, end, ' ');
    sp2 = sp1 ? find_byte(sp1 + 1, end, ' ') : NULL;
    if (sp2 == NULL || find_byte(sp2 + 1, end, ' ') || sp1 == p
        || !all_class(p, sp1 - p, C_TOKEN) || !eq_lower(sp2 + 1, end - sp2 - 1, "sip/2.0"))
        BAIL_INT;
    out->is_request = 1;
    {
        const char *uri = sp1 + 1;
        Py_ssize_t ulen = sp2 - uri;
        if ((ulen >= 4 && memcmp(uri, "sip:", 4) == 0) || (ulen >= 5 && memcmp(uri, "sips:", 5) == 0)) {
            const char *at, *from;
            if (!ruri_sip_ok(uri, ulen))
                BAIL_INT;
            /* RFC 3261 §19.1.1: no headers in a Request-URI. */
            at = find_byte(uri, sp2, '@');
            from = at ? at + 1 : uri;
            if (find_byte(from, sp2, '?'))
                BAIL_INT;
            out->b = mkstr(uri, ulen);
        }
        else {
            out->b = call_fallback(uri_parse, uri, ulen, NULL);
        }
        if (out->b == NULL)
            return -1;
    }
    out->a = mkstr(p, sp1 - p);
    return out->a == NULL ? -1 : 0;
}

/* --- the message --------------------------------------------------------------------------- */

static const char *
find_crlf(const char *p, const char *end)
{
    while (p < end) {
        const char *cr = memchr(p, '\r', (size_t)(end - p));
        if (cr == NULL || cr + 1 >= end)
            return end;
        if (cr[1] == '\n')
            return cr;
        p = cr + 1;
    }
    return end;
}

static Py_ssize_t
find_head_end(const char *p, Py_ssize_t n)
{
    const char *end = p + n, *q = p;
    while (q + 4 <= end) {
        const char *cr = memchr(q, '\r', (size_t)(end - q - 3));
        if (cr == NULL)
            return -1;
        if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n')
            return cr - p;
        q = cr + 1;
    }
    return -1;
}

/* parser._FOLD: every CRLF followed by SP/HT, with the run, becomes one SP.
 * Returns a new buffer (PyMem) or NULL with *len unchanged when nothing folds. */
static char *
unfold(const char *p, Py_ssize_t *len)
{
    Py_ssize_t n = *len, i, o = 0;
    char *out;
    int folded = 0;
    for (i = 0; i + 2 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && (p[i + 2] == ' ' || p[i + 2] == '\t')) {
            folded = 1;
            break;
        }
    }
    if (!folded)
        return NULL;
    out = PyMem_Malloc((size_t)n);
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (i = 0; i < n;) {
        if (i + 2 < n && p[i] == '\r' && p[i + 1] == '\n' && (p[i + 2] == ' ' || p[i + 2] == '\t')) {
            out[o++] = ' ';
            i += 3;
            while (i < n && (p[i] == ' ' || p[i] == '\t'))
                i++;
        }
        else
            out[o++] = p[i++];
    }
    *len = o;
    return out;
}

/* d[key], created as an empty list when absent (borrowed). */
static PyObject *
list_for(PyObject *d, PyObject *key)
{
    PyObject *values = PyDict_GetItemWithError(d, key);
    if (values != NULL || PyErr_Occurred())
        return values;
    values = PyList_New(0);
    if (values == NULL)
        return NULL;
    if (PyDict_SetItem(d, key, values) < 0) {
        Py_DECREF(values);
        return NULL;
    }
    Py_DECREF(values);
    return values;
}

/* d[key] = [value] for a header allowed once; stealing value. */
static int
set_single(PyObject *d, PyObject *key, PyObject *value)
{
    PyObject *list;
    int r;
    if (value == NULL)
        return -1;
    list = PyList_New(1);
    if (list == NULL) {
        Py_DECREF(value);
        return -1;
    }
    PyList_SET_ITEM(list, 0, value);
    r = PyDict_SetItem(d, key, list);
    Py_DECREF(list);
    return r;
}

/* A decimal of 1-10 ASCII digits (Python's isdigit()/int() decide anything else). */
static long long
small_decimal(const char *p, Py_ssize_t n)
{
    long long v = 0;
    Py_ssize_t i;
    if (n < 1 || n > 10)
        return -1;
    for (i = 0; i < n; i++) {
        if (!IS(p[i], C_DIGIT))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* One header line: "name: value", already unfolded. */
static int
header_line(const char *line, const char *end, PyObject *d, PyObject *names, long long *clen)
{
    const char *colon = find_byte(line, end, ':'), *n0, *n1, *v0, *v1;
    PyObject *key, *values, *value;
    int kind, r;

    if (colon == NULL)
        BAIL_INT;
    n0 = line;
    n1 = colon;
    while (n0 < n1 && (*n0 == ' ' || *n0 == '\t'))
        n0++;
    while (n1 > n0 && (n1[-1] == ' ' || n1[-1] == '\t'))
        n1--;
    if (n0 == n1 || !all_class(n0, n1 - n0, C_TOKEN))
        BAIL_INT;
    v0 = colon + 1;
    v1 = end;
    while (v0 < v1 && IS(*v0, C_SPACE))
        v0++;
    while (v1 > v0 && IS(v1[-1], C_SPACE))
        v1--;
    if (v1 > v0 && ((unsigned char)*v0 >= 0x80 || (unsigned char)v1[-1] >= 0x80)) {
        /* str.strip() also strips non-ASCII white space (U+0085, U+00A0, ...) */
        PyObject *text = mkstr(v0, v1 - v0);
        Py_ssize_t tlen;
        int edge;
        if (text == NULL)
            return -1;
        tlen = PyUnicode_GET_LENGTH(text);
        edge = Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(text, 0))
               || Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(text, tlen - 1));
        Py_DECREF(text);
        if (edge)
            BAIL_INT;
    }

    if (n1 - n0 == 1) {
        int c = lower_ascii((unsigned char)*n0);
        kind = compact_kinds[c];
        key = compact_keys[c];
    }
    else {
        kind = hot_kind(n0, n1 - n0);
        key = NULL;
    }

    switch (kind) {
    case H_GENERIC:
        if (key != NULL)
            Py_INCREF(key);
        else if ((key = mkstr_case(n0, n1 - n0, 0)) == NULL)
            return -1;
        value = mkstr(v0, v1 - v0);
        if (value == NULL)
            goto generic_error;
        values = PyDict_GetItemWithError(d, key);
        if (values != NULL) {
            r = PyList_Append(values, value);
        }
        else if (PyErr_Occurred()) {
            r = -1;
        }
        else {
            PyObject *written;
            r = set_single(d, key, Py_NewRef(value));
            if (r == 0) {
                r = PyDict_Contains(canonical, key);
                if (r == 0) {
                    /* name.rstrip(): the name is [SP/HT]* token [SP/HT]* */
                    written = mkstr(line, n1 - line);
                    r = written == NULL ? -1 : PyDict_SetItem(names, key, written);
                    Py_XDECREF(written);
                }
                else if (r > 0)
                    r = 0;
            }
        }
        Py_DECREF(value);
        Py_DECREF(key);
        return r;
    generic_error:
        Py_DECREF(key);
        return -1;

    case H_VIA:
    case H_CONTACT:
    case H_ROUTE:
    case H_RROUTE:
        values = list_for(d, hot_keys[kind]);
        if (values == NULL)
            return -1;
        return parse_list(v0, v1 - v0, kind, values);

    case H_FROM:
    case H_TO:
    case H_CALLID:
    case H_CSEQ:
    case H_MAXFWD:
        key = hot_keys[kind];
        r = PyDict_Contains(d, key);
        if (r != 0)
            return r > 0 ? -1 : r;  /* more than one: the Python path says so */
        if (kind == H_FROM || kind == H_TO)
            value = parse_nameaddr(v0, v1 - v0, 0);
        else if (kind == H_CSEQ)
            value = parse_cseq(v0, v1 - v0);
        else if (kind == H_CALLID) {
            if (v0 == v1 || find_byte(v0, v1, ' ') || find_byte(v0, v1, '\t'))
                BAIL_INT;
            value = mkstr(v0, v1 - v0);
        }
        else {
            long long mf = small_decimal(v0, v1 - v0);
            if (mf < 0 || mf > 255)
                BAIL_INT;
            value = PyLong_FromLongLong(mf);
        }
        return set_single(d, key, value);

    case H_CLEN: {
        long long cl = small_decimal(v0, v1 - v0);
        if (cl < 0 || (*clen >= 0 && *clen != cl))
            BAIL_INT;
        *clen = cl;
        return set_single(d, hot_keys[kind], PyLong_FromLongLong(cl));
    }

    case H_DATE:
        /* RFC 3261 §20.17: GMT only. */
        if (v1 - v0 < 3 || memcmp(v1 - 3, "GMT", 3) != 0)
            BAIL_INT;
        values = list_for(d, hot_keys[kind]);
        if (values == NULL)
            return -1;
        value = mkstr(v0, v1 - v0);
        if (value == NULL)
            return -1;
        r = PyList_Append(values, value);
        Py_DECREF(value);
        return r;
    }
    BAIL_INT;
}

static PyObject *
build_message(const char *data, Py_ssize_t len, Py_ssize_t max_headers, int exact_body)
{
    Py_ssize_t idx = find_head_end(data, len), hlen;
    const char *head, *hend, *line, *eol;
    char *unfolded;
    start_line sl = {0, NULL, NULL};
    PyObject *headers = NULL, *d = NULL, *names = NULL, *body = NULL, *msg = NULL;
    PyObject *cseq_list, *args[4];
    Py_ssize_t nlines = 1, blen;
    long long clen = -1;

    if (idx < 0)
        BAIL_NULL;  /* bare-LF line ends, or no end of headers: Python decides */
    hlen = idx;
    unfolded = unfold(data, &hlen);
    if (unfolded == NULL && PyErr_Occurred())
        return NULL;
    head = unfolded ? unfolded : data;
    hend = head + hlen;

    eol = find_crlf(head, hend);
    if (parse_start(head, eol - head, &sl) < 0)
        goto done;
    headers = PyObject_CallNoArgs(headers_type);
    if (headers == NULL)
        goto done;
    d = PyObject_GetAttr(headers, s__d);
    if (d == NULL || !PyDict_CheckExact(d))
        goto done;
    names = PyObject_GetAttr(headers, s__names);
    if (names == NULL || !PyDict_CheckExact(names))
        goto done;
    for (line = eol + 2; eol < hend; line = eol + 2) {
        eol = find_crlf(line, hend);
        if (++nlines > max_headers + 1)
            goto done;
        if (header_line(line, eol, d, names, &clen) < 0)
            goto done;
    }
    cseq_list = PyDict_GetItemWithError(d, hot_keys[H_CSEQ]);
    if (cseq_list == NULL)
        goto done;
    if (PyDict_Contains(d, hot_keys[H_VIA]) != 1 || PyDict_Contains(d, hot_keys[H_FROM]) != 1
        || PyDict_Contains(d, hot_keys[H_TO]) != 1 || PyDict_Contains(d, hot_keys[H_CALLID]) != 1)
        goto done;
    blen = len - idx - 4;
    if (!exact_body && clen >= 0) {
        if (clen > blen)
            goto done;
        blen = (Py_ssize_t)clen;
    }
    body = PyBytes_FromStringAndSize(data + idx + 4, blen);
    if (body == NULL)
        goto done;
    if (sl.is_request) {
        PyObject *method = PyObject_GetAttr(PyList_GET_ITEM(cseq_list, 0), s_method);
        int same;
        if (method == NULL)
            goto done;
        same = PyObject_RichCompareBool(method, sl.a, Py_EQ);
        Py_DECREF(method);
        if (same != 1)
            goto done;
    }
    args[0] = sl.a;
    args[1] = sl.b;
    args[2] = headers;
    args[3] = body;
    msg = PyObject_Vectorcall(sl.is_request ? request_type : response_type, args, 4, NULL);
done:
    if (unfolded)
        PyMem_Free(unfolded);
    Py_XDECREF(sl.a);
    Py_XDECREF(sl.b);
    Py_XDECREF(headers);
    Py_XDECREF(d);
    Py_XDECREF(names);
    Py_XDECREF(body);
    return msg;
}

PyDoc_STRVAR(parse_message_doc,
"parse_message(data, max_message_size, max_headers, exact_body) -> message or None\n\n"
"The Request or Response ctic.sip.parser's Python path would build from\n"
"data, or None when the Python path must decide (any fault, any form not\n"
"handled here).  Never raises SIPParseError.");

static PyObject *
parse_message(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t max_size, max_headers;
    int exact_body;
    PyObject *msg;

    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "parse_message takes 4 arguments");
        return NULL;
    }
    if (via_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ctic.sip._speedups is not configured");
        return NULL;
    }
    max_size = PyLong_AsSsize_t(args[1]);
    if (max_size == -1 && PyErr_Occurred())
        return NULL;
    max_headers = PyLong_AsSsize_t(args[2]);
    if (max_headers == -1 && PyErr_Occurred())
        return NULL;
    exact_body = PyObject_IsTrue(args[3]);
    if (exact_body < 0)
        return NULL;
    if (!PyBytes_CheckExact(args[0]) || PyBytes_GET_SIZE(args[0]) > max_size
        || max_headers < 0 || max_headers > PY_SSIZE_T_MAX / 2)
        Py_RETURN_NONE;
    msg = build_message(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), max_headers, exact_body);
    if (msg == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return msg;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(Via, NameAddr, CSeq, Headers, Request, Response, Via.parse, NameAddr.parse, "
     "parse_uri, CANONICAL, COMPACT): hand over the classes and fallbacks."},
    {"parse_message", (PyCFunction)(void (*)(void))parse_message, METH_FASTCALL, parse_message_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ctic.sip._speedups",
    "Optional C fast path for ctic.sip.parser (see parse_message).", -1, methods,
    NULL, NULL, NULL, NULL,
};

#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL

PyMODINIT_FUNC
PyInit__speedups(void)
{
    int k;
    init_classes();
    if ((empty_tuple = PyTuple_New(0)) == NULL)
        return NULL;
    for (k = 1; k < H_COUNT; k++)
        INTERN(hot_keys[k], hot_names[k]);
    INTERN(s_transport, "transport");
    INTERN(s_host, "host");
    INTERN(s_port, "port");
    INTERN(s_params, "params");
    INTERN(s_display, "display");
    INTERN(s__uri, "_uri");
    INTERN(s__uri_text, "_uri_text");
    INTERN(s_seq, "seq");
    INTERN(s_method, "method");
    INTERN(s__d, "_d");
    INTERN(s__names, "_names");
    return PyModule_Create(&module);
}
