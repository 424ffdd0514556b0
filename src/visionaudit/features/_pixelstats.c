/* One compiled pass for the per-image measuring of visionaudit.features (properties.py, hashing.py).
 *
 * Why C: at the analysis size (128 px long side) the numpy version spends ~40 calls of 1-15 us each,
 * mostly per-call overhead, on arrays of 16k pixels; here the same arithmetic is a few loops over the
 * pixels. The numpy functions (and Pillow, for luminance and box_thumb) remain the reference and the
 * fallback when this module is not built; every value below mirrors one of them operation for
 * operation (integer sums where numpy sums integers, the same floating-point expressions in the same
 * order, Pillow's fixed-point arithmetic), so they agree to the last bit except the entropy's dot
 * product (summation order: ~1e-15 relative). tests/test_pixelstats.py checks both paths.
 *
 * pixel_stats(gray, rgb) -> tuple of 16 floats, in the order of properties.PIXEL_STATS:
 *   gray: C-contiguous (h, w) uint8 buffer; rgb: None or the same image as a C-contiguous (h, w, 3)
 *   uint8 buffer. The GIL is released while the pixels are read.
 * luminance(rgb) -> the bytes of Pillow's RGB -> 'L' conversion of the (h, w, 3) uint8 array.
 * box_thumb(gray) -> hashing.thumb's bytes: Pillow's 32x32 BOX resize of a gray array no taller than wide,
 *   bit for bit.
 * thumb_prints(thumb) -> (dhash, tiny) of hashing.py from a 32x32 thumbnail's bytes.
 * measure(pixels, h, w, channels, dct) -> the four above and the phash in one call (what decode.measure_bytes uses).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Side of the central window the colour noise is measured in (properties._NOISE_WINDOW). */
#define NOISE_WINDOW 128

/* The pixel loops get an AVX2 clone picked at load time (gcc on x86-64, through ifunc): the loops
 * over interleaved RGB only vectorise with AVX2's shuffles (luminance 17 -> 8 us at 128 px); "default"
 * is the plain x86-64 build. AVX2 brings no FMA and these loops are integer, so values do not depend
 * on the clone. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif
#define N_STATS 16
/* properties.BACKGROUND_TOLERANCE */
#define BACKGROUND_TOLERANCE 6

/* hashing.PHASH_TOLERANCE */
#define PHASH_TOLERANCE 1e-9

/* numpy.searchsorted(cdf, v) (side="left"): the first level whose cumulative count is >= v. */
static int searchsorted(const double *cdf, double v)
{
    int i = 0;
    while (i < 256 && cdf[i] < v)
        i++;
    return i;
}

/* Mean level (0..1) of the darkest 5% of the pixels counted in a histogram whose cumulative counts are
 * cdf and cumulative level sums level_sums: histogram_stats' shadows. */
static double dark_tail(const double *cdf, const double *level_sums)
{
    double tail = 0.05 * cdf[255];
    int k = searchsorted(cdf, tail);
    double below_k0 = k > 0 ? cdf[k - 1] : 0.0, below_k1 = k > 0 ? level_sums[k - 1] : 0.0;
    return (below_k1 + (tail - below_k0) * k) / (tail * 255.0);
}

/* properties.histogram_stats: out[0..8] = brightness, contrast, dynamic_range, dark_fraction,
 * bright_fraction, entropy, shadows, highlights, relative_contrast. */
static void histogram_stats(const uint64_t *counts, double *out)
{
    double cdf[256], level_sums[256];
    uint64_t c = 0, s = 0, sq = 0;
    /* np.cumsum of float64 counts and of counts x level: integers below 2^53, so exact either way. */
    for (int l = 0; l < 256; l++) {
        c += counts[l];
        s += counts[l] * (uint64_t)l;
        sq += counts[l] * (uint64_t)(l * l);
        cdf[l] = (double)c;
        level_sums[l] = (double)s;
    }
    double n = cdf[255];
    if (n == 0) {
        for (int i = 0; i < 9; i++)
            out[i] = NAN;
        return;
    }
    double total = level_sums[255];
    double mean = total / n;
    double var = (double)sq / n - mean * mean;              /* h @ _LEVELS_SQ: an exact integer sum */
    double tail = 0.05 * n;
    int p01 = searchsorted(cdf, 0.01 * n), p99 = searchsorted(cdf, 0.99 * n);
    int j = searchsorted(cdf, n - tail);
    double shadows = dark_tail(cdf, level_sums);
    double highlights = ((total - level_sums[j]) + (tail - (n - cdf[j])) * j) / (tail * 255.0);
    /* entropy: log2(n) - (nz @ log2(nz)) / n over the non-empty levels */
    double plogp = 0.0;
    for (int l = 0; l < 256; l++)
        if (counts[l])
            plogp += (double)counts[l] * log2((double)counts[l]);
    double a = highlights + shadows, b = 2.0 - highlights - shadows;
    double span = b < a ? b : a;                               /* Python's min(a, b) */
    out[0] = mean / 255.0;
    out[1] = sqrt(var > 0.0 ? var : 0.0) / 255.0;
    out[2] = (double)(p99 - p01) / 255.0;
    out[3] = cdf[24] / n;
    out[4] = 1.0 - cdf[231] / n;
    out[5] = log2(n) - plogp / n;
    out[6] = shadows;
    out[7] = highlights;
    out[8] = span > 0 ? (highlights - shadows) / span : 0.0;
}

/* properties.sharpness (*sharp: var(integer 3x3 Laplacian) / (variance + 1)) and properties.edge_sharpness
 * (*edge: mean squared Laplacian / (mean squared difference across + mean squared difference down), 0
 * when every difference is 0), both NaN below 6x6 pixels. The sums are integers, exact as numpy's, and
 * below 2^53 (so exact as doubles) for images of up to 8 billion pixels. */
MULTIVERSION static void sharpness(const uint8_t *g, Py_ssize_t h, Py_ssize_t w, double variance, double *sharp,
                                   double *edge)
{
    if (h < 6 || w < 6) {
        *sharp = *edge = NAN;
        return;
    }
    int64_t total = 0, squares = 0, across = 0, down = 0;
    for (Py_ssize_t y = 1; y < h - 1; y++) {
        const uint8_t *up = g + (y - 1) * w, *row = g + y * w, *down = g + (y + 1) * w;
        int32_t t = 0;   /* a row's sum: |lap| <= 1020, so int32 holds 2 million pixels a row */
        int64_t q = 0;
        for (Py_ssize_t x = 1; x < w - 1; x++) {
            int32_t lap = up[x] + down[x] + row[x - 1] + row[x + 1] - 4 * row[x];
            t += lap;
            q += lap * lap;
        }
        total += t;
        squares += q;
    }
    double n = (double)((h - 2) * (w - 2));
    /* Python squares the integer total exactly, then divides: int64 holds the square up to |total| < 3e9
     * (3 million pixels of maximal Laplacian); beyond, a double square is within 1e-16 of it. */
    double total_sq = total < 3000000000LL && total > -3000000000LL ? (double)(total * total) : (double)total * (double)total;
    double lap_var = ((double)squares - total_sq / n) / n;
    *sharp = lap_var / (variance + 1.0);
    /* first differences, squared, summed in int32 over runs of at most DIFF_RUN pixels (255^2 x 32,768 <
     * 2^31), which vectorises, then in int64 */
    enum { DIFF_RUN = 32768 };
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *row = g + y * w, *below = row + w;
        for (Py_ssize_t x0 = 0; x0 < w - 1; x0 += DIFF_RUN) {
            Py_ssize_t end = x0 + DIFF_RUN < w - 1 ? x0 + DIFF_RUN : w - 1;
            int32_t q = 0;
            for (Py_ssize_t x = x0; x < end; x++) {
                int32_t d = row[x + 1] - row[x];
                q += d * d;
            }
            across += q;
        }
        if (y == h - 1)
            break;
        for (Py_ssize_t x0 = 0; x0 < w; x0 += DIFF_RUN) {
            Py_ssize_t end = x0 + DIFF_RUN < w ? x0 + DIFF_RUN : w;
            int32_t q = 0;
            for (Py_ssize_t x = x0; x < end; x++) {
                int32_t d = below[x] - row[x];
                q += d * d;
            }
            down += q;
        }
    }
    /* Python: (lap_sq / n) / (dx_sq / (h * (w - 1)) + dy_sq / ((h - 1) * w)), each a correctly rounded
     * division of exact integers, as these are */
    *edge = across == 0 && down == 0 ? 0.0
            : ((double)squares / n) / ((double)across / (double)(h * (w - 1)) + (double)down / (double)((h - 1) * w));
}

/* properties._immerkaer_sigmas for one plane (rows x cols int16, contiguous): mean
 * |[[1,-2,1],[-2,4,-2],[1,-2,1]] response| x sqrt(pi/2) / 6. The mask is the outer product of two
 * second differences, taken as numpy takes them: along rows into `e` (scratch of rows x (cols - 2)),
 * then down columns. Integer throughout, as there: |e| <= 4 x 1020 and |response| <= 16 x 1020 for
 * the 2x2 sums of 8-bit differences, so int16 holds both (and lets the compiler use 8-lane SIMD). */
MULTIVERSION static double immerkaer_sigma(const int16_t *p, Py_ssize_t rows, Py_ssize_t cols, int16_t *e)
{
    Py_ssize_t ec = cols - 2;
    for (Py_ssize_t y = 0; y < rows; y++) {
        const int16_t *row = p + y * cols;
        int16_t *out = e + y * ec;
        for (Py_ssize_t x = 0; x < ec; x++)
            out[x] = (int16_t)(row[x] - 2 * row[x + 1] + row[x + 2]);
    }
    int64_t total = 0;
    for (Py_ssize_t y = 0; y + 2 < rows; y++) {
        const int16_t *e0 = e + y * ec, *e1 = e0 + ec, *e2 = e1 + ec;
        int32_t t = 0;   /* a row of at most NOISE_WINDOW responses */
        for (Py_ssize_t x = 0; x < ec; x++) {
            int16_t r = (int16_t)(e0[x] - 2 * e1[x] + e2[x]);
            t += r < 0 ? -r : r;
        }
        total += t;
    }
    double scale = sqrt(M_PI / 2.0) / (6.0 * (double)((rows - 2) * ec));
    return (double)total * scale;
}

/* properties._white_noise_sigmas for one plane of the window: sqrt(max(full^2 - (quad/4)^2, 0) * 4/3),
 * quad being the sigma of the 2x2 block sums. `scratch` holds rows x cols + (rows/2) x (cols/2) int16. */
static double white_noise_sigma(const int16_t *p, Py_ssize_t rows, Py_ssize_t cols, int16_t *scratch)
{
    Py_ssize_t qr = rows / 2, qc = cols / 2;
    int16_t *quad = scratch, *e = scratch + qr * qc;
    for (Py_ssize_t y = 0; y < qr; y++) {
        const int16_t *a = p + 2 * y * cols, *b = a + cols;
        for (Py_ssize_t x = 0; x < qc; x++)
            quad[y * qc + x] = (int16_t)(a[2 * x] + b[2 * x] + a[2 * x + 1] + b[2 * x + 1]);
    }
    double full = immerkaer_sigma(p, rows, cols, e);
    double half = immerkaer_sigma(quad, qr, qc, e);
    double d = full * full - pow(half / 4.0, 2.0);    /* Python's ** 2 calls libm pow */
    return sqrt((d > 0.0 ? d : 0.0) * 4.0 / 3.0);
}

/* properties.channel_spread (out[0]) and, when it is > 0, properties.colour_noise (out[1], NaN below
 * 6x6 pixels) from the (h, w, 3) pixels: R-G and B-G, as properties.chroma_planes makes them, kept
 * for the rows of the central noise window. */
MULTIVERSION static int colour_stats(const uint8_t *rgb, Py_ssize_t h, Py_ssize_t w, double *out)
{
    Py_ssize_t y0 = h > NOISE_WINDOW ? (h - NOISE_WINDOW) / 2 : 0, x0 = w > NOISE_WINDOW ? (w - NOISE_WINDOW) / 2 : 0;
    Py_ssize_t rows = h - y0 < NOISE_WINDOW ? h - y0 : NOISE_WINDOW, cols = w - x0 < NOISE_WINDOW ? w - x0 : NOISE_WINDOW;
    /* planes: 2 x (rows + 1) x w, the window's rows (whole rows: one loop for spread and planes) and
     * one row where the rows outside the window go; then scratch for white_noise_sigma */
    int16_t *buf = malloc(sizeof(int16_t) * (size_t)(2 * (rows + 1) * w + rows * cols + (rows / 2) * (cols / 2)));
    if (!buf)
        return -1;
    int16_t *rg = buf, *bg = buf + (rows + 1) * w, *scratch = bg + (rows + 1) * w;
    int64_t spread = 0;
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *restrict px = rgb + 3 * y * w;
        Py_ssize_t slot = (y >= y0 && y < y0 + rows ? y - y0 : rows) * w;
        int16_t *restrict rgr = rg + slot, *restrict bgr = bg + slot;
        /* stored for every row (cheaper than a branch per pixel), and summed in a second loop: apart,
         * both loops vectorise */
        for (Py_ssize_t x = 0; x < w; x++) {
            rgr[x] = (int16_t)(px[3 * x] - px[3 * x + 1]);
            bgr[x] = (int16_t)(px[3 * x + 2] - px[3 * x + 1]);
        }
        int32_t t = 0;   /* |R-G| + |B-G| <= 510 a pixel: int32 holds a row of 4 million */
        for (Py_ssize_t x = 0; x < w; x++)
            t += abs(rgr[x]) + abs(bgr[x]);
        spread += t;
    }
    out[0] = (double)spread / (double)(2 * h * w);
    out[1] = NAN;
    if (out[0] > 0 && h >= 6 && w >= 6) {
        /* the window's columns, packed contiguously in place (row y's start never passes row y's source) */
        for (Py_ssize_t y = 0; y < rows; y++)
            for (Py_ssize_t x = 0; x < cols; x++) {
                rg[y * cols + x] = rg[y * w + x0 + x];
                bg[y * cols + x] = bg[y * w + x0 + x];
            }
        double s_rg = white_noise_sigma(rg, rows, cols, scratch), s_bg = white_noise_sigma(bg, rows, cols, scratch);
        out[1] = sqrt(0.25 * (s_rg * s_rg + s_bg * s_bg));
    }
    free(buf);
    return 0;
}

/* properties.background_stats: out[0] = background_share, out[1] = background_level, out[2] =
 * foreground_shadows, from the image's histogram counts and its border pixels; shadows is out[6] of
 * histogram_stats. */
static void background_stats(const uint8_t *g, Py_ssize_t h, Py_ssize_t w, const uint64_t *counts, double shadows,
                             double *out)
{
    uint64_t border[256] = {0};
    uint64_t nb = 0;
    if (h < 2 || w < 2) {
        for (Py_ssize_t i = 0; i < h * w; i++)
            border[g[i]]++;
        nb = (uint64_t)(h * w);
    } else {
        for (Py_ssize_t x = 0; x < w; x++) {
            border[g[x]]++;
            border[g[(h - 1) * w + x]]++;
        }
        for (Py_ssize_t y = 1; y < h - 1; y++) {
            border[g[y * w]]++;
            border[g[y * w + w - 1]]++;
        }
        nb = (uint64_t)(2 * w + 2 * (h - 2));
    }
    uint64_t half = (nb + 1) / 2, c = 0;
    int level = 0;
    for (; level < 256; level++) {
        c += border[level];
        if (c >= half)
            break;
    }
    int lo = level - BACKGROUND_TOLERANCE < 0 ? 0 : level - BACKGROUND_TOLERANCE;
    int hi = level + BACKGROUND_TOLERANCE > 255 ? 255 : level + BACKGROUND_TOLERANCE;
    uint64_t near = 0;
    for (int l = lo; l <= hi; l++)
        near += border[l];
    out[0] = (double)near / (double)nb;
    out[1] = level / 255.0;
    if (out[0] < 0.5) {
        out[2] = shadows;
        return;
    }
    double cdf[256], level_sums[256];
    uint64_t fc = 0, fs = 0, total = 0;
    for (int l = 0; l < 256; l++) {
        total += counts[l];
        if (l < lo || l > hi) {
            fc += counts[l];
            fs += counts[l] * (uint64_t)l;
        }
        cdf[l] = (double)fc;
        level_sums[l] = (double)fs;
    }
    out[2] = (double)fc >= 0.01 * (double)total && fc > 0 ? dark_tail(cdf, level_sums) : NAN;
}

/* All N_STATS values of one image (see pixel_stats); rgb is NULL for gray images. -1 when out of memory. */
static int stats_of(const uint8_t *g, Py_ssize_t h, Py_ssize_t w, const uint8_t *rgb, double *out)
{
    /* four partial histograms: consecutive equal pixels would otherwise wait on one counter */
    uint64_t part[4][256] = {{0}}, counts[256];
    Py_ssize_t i = 0, npix = h * w;
    for (; i + 4 <= npix; i += 4) {
        part[0][g[i]]++;
        part[1][g[i + 1]]++;
        part[2][g[i + 2]]++;
        part[3][g[i + 3]]++;
    }
    for (; i < npix; i++)
        part[0][g[i]]++;
    for (int l = 0; l < 256; l++)
        counts[l] = part[0][l] + part[1][l] + part[2][l] + part[3][l];
    histogram_stats(counts, out);
    /* decode.py passes the variance back from the contrast: (contrast * 255) ** 2 */
    sharpness(g, h, w, pow(out[1] * 255.0, 2.0), &out[9], &out[12]);
    background_stats(g, h, w, counts, out[6], out + 13);
    out[10] = 0.0;
    out[11] = NAN;
    return rgb ? colour_stats(rgb, h, w, out + 10) : 0;
}

static PyObject *pixel_stats(PyObject *self, PyObject *args)
{
    PyObject *gray_obj, *rgb_obj;
    if (!PyArg_ParseTuple(args, "OO:pixel_stats", &gray_obj, &rgb_obj))
        return NULL;
    Py_buffer gray, rgb = {0};
    int have_rgb = rgb_obj != Py_None;
    if (PyObject_GetBuffer(gray_obj, &gray, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    PyObject *result = NULL;
    if (gray.ndim != 2 || gray.itemsize != 1 || (gray.format && strcmp(gray.format, "B") != 0)) {
        PyErr_SetString(PyExc_ValueError, "gray must be a C-contiguous (h, w) uint8 array");
        goto done_gray;
    }
    Py_ssize_t h = gray.shape[0], w = gray.shape[1];
    if (have_rgb) {
        if (PyObject_GetBuffer(rgb_obj, &rgb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
            goto done_gray;
        if (rgb.ndim != 3 || rgb.itemsize != 1 || (rgb.format && strcmp(rgb.format, "B") != 0)
            || rgb.shape[0] != h || rgb.shape[1] != w || rgb.shape[2] != 3) {
            PyErr_SetString(PyExc_ValueError, "rgb must be a C-contiguous (h, w, 3) uint8 array the size of gray");
            goto done;
        }
    }
    double out[N_STATS];
    int failed;
    Py_BEGIN_ALLOW_THREADS
    failed = stats_of(gray.buf, h, w, have_rgb ? rgb.buf : NULL, out);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_BuildValue("(dddddddddddddddd)", out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7],
                           out[8], out[9], out[10], out[11], out[12], out[13], out[14], out[15]);
done:
    if (have_rgb && rgb.obj)
        PyBuffer_Release(&rgb);
done_gray:
    PyBuffer_Release(&gray);
    return result;
}

/* Image.convert("L") of an RGB image given as its (h, w, 3) uint8 array -> the h x w bytes: Pillow's
 * rgb2l (ITU-R 601-2 luma, L = R * 299/1000 + G * 587/1000 + B * 114/1000 in 16-bit fixed point,
 * rounded), equal to it on all 2^24 colours. */
MULTIVERSION static void luma(const uint8_t *restrict px, uint8_t *restrict out, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = (uint8_t)((px[3 * i] * 19595 + px[3 * i + 1] * 38470 + px[3 * i + 2] * 7471 + 0x8000) >> 16);
}

static PyObject *luminance(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (b.ndim != 3 || b.itemsize != 1 || (b.format && strcmp(b.format, "B") != 0) || b.shape[2] != 3) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "luminance needs a C-contiguous (h, w, 3) uint8 array");
        return NULL;
    }
    Py_ssize_t n = b.shape[0] * b.shape[1];
    PyObject *result = PyBytes_FromStringAndSize(NULL, n);
    if (result) {
        Py_BEGIN_ALLOW_THREADS
        luma(b.buf, (uint8_t *)PyBytes_AS_STRING(result), n);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&b);
    return result;
}

/* Pillow's fixed-point resampling (libImaging/Resample.c), for the BOX filter and 8-bit pixels. */
#define PRECISION_BITS (32 - 8 - 2)

static inline uint8_t clip8(int32_t v)
{
    if (v >= (1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

/* Resample.c precompute_coeffs with box_filter, then normalize_coeffs_8bpc: for each output pixel its
 * first input pixel (bounds[2i]), count (bounds[2i+1]) and ksize fixed-point weights. Returns ksize,
 * or 0 when out of memory. */
static int box_coeffs(Py_ssize_t in_size, int out_size, int **bounds_out, int32_t **kk_out)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 0.5 * filterscale, ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int *bounds = malloc(sizeof(int) * 2 * out_size);
    int32_t *kk = calloc((size_t)out_size * ksize, sizeof(int32_t));
    double *w = malloc(sizeof(double) * ksize);
    if (!bounds || !kk || !w) {
        free(bounds), free(kk), free(w);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in_size)
            xmax = (int)in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double u = (x + xmin - center + 0.5) * ss;
            w[x] = u > -0.5 && u <= 0.5 ? 1.0 : 0.0;
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double k = ww != 0.0 ? w[x] / ww : w[x];
            kk[xx * ksize + x] = (int32_t)(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    free(w);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

#define THUMB_SIDE 32

/* The number m when every output pixel averages the next m inputs with one weight (an integer
 * scale: 128 -> 32, 160 -> 32), else 0. Then each sum of weight x pixel is weight x (sum of pixels),
 * the same integer, in a loop the compiler unrolls. */
static int equal_box(const int *bounds, const int32_t *kk, int ksize)
{
    int m = bounds[1];
    for (int xx = 0; xx < THUMB_SIDE; xx++) {
        if (bounds[2 * xx] != xx * m || bounds[2 * xx + 1] != m)
            return 0;
        for (int i = 0; i < m; i++)
            if (kk[xx * ksize + i] != kk[0])
                return 0;
    }
    return m;
}

/* resample_rows when equal_box gave m: inlined with m a constant, so the inner loop unrolls. */
static inline void equal_rows(const uint8_t *in, Py_ssize_t rows, Py_ssize_t w, uint8_t *out, int m, int32_t k)
{
    for (Py_ssize_t y = 0; y < rows; y++) {
        const uint8_t *src = in + y * w;
        for (int xx = 0; xx < THUMB_SIDE; xx++) {
            int32_t sum = 0;
            for (int i = 0; i < m; i++)
                sum += src[xx * m + i];
            out[y * THUMB_SIDE + xx] = clip8((1 << (PRECISION_BITS - 1)) + sum * k);
        }
    }
}

/* Resample.c ImagingResampleHorizontal_8bpc: each of `rows` rows of `in` (w wide) to THUMB_SIDE pixels. */
MULTIVERSION static void resample_rows(const uint8_t *in, Py_ssize_t rows, Py_ssize_t w, uint8_t *out,
                                       const int *bounds, const int32_t *kk, int ksize)
{
    int m = equal_box(bounds, kk, ksize);
    if (m == 4) {   /* 256 px JPEGs decoded at 128 */
        equal_rows(in, rows, w, out, 4, kk[0]);
        return;
    }
    if (m == 5) {   /* 640 px photos decoded at 160 */
        equal_rows(in, rows, w, out, 5, kk[0]);
        return;
    }
    for (Py_ssize_t y = 0; y < rows; y++)
        for (int xx = 0; xx < THUMB_SIDE; xx++) {
            const uint8_t *src = in + y * w + bounds[2 * xx];
            const int32_t *k = kk + xx * ksize;
            int32_t ss0 = 1 << (PRECISION_BITS - 1);
            for (int i = 0; i < bounds[2 * xx + 1]; i++)
                ss0 += src[i] * k[i];
            out[y * THUMB_SIDE + xx] = clip8(ss0);
        }
}

/* Resample.c ImagingResampleVertical_8bpc on THUMB_SIDE-wide rows: each output row a weighted sum of
 * input rows, accumulated a whole row at a time (vectorises; integer sums, so the order is free). */
MULTIVERSION static void resample_columns(const uint8_t *in, uint8_t *out, const int *bounds, const int32_t *kk,
                                          int ksize)
{
    for (int yy = 0; yy < THUMB_SIDE; yy++) {
        int32_t acc[THUMB_SIDE];
        const int32_t *k = kk + yy * ksize;
        for (int xx = 0; xx < THUMB_SIDE; xx++)
            acc[xx] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < bounds[2 * yy + 1]; y++) {
            const uint8_t *src = in + (bounds[2 * yy] + y) * THUMB_SIDE;
            for (int xx = 0; xx < THUMB_SIDE; xx++)
                acc[xx] += src[xx] * k[y];
        }
        for (int xx = 0; xx < THUMB_SIDE; xx++)
            out[yy * THUMB_SIDE + xx] = clip8(acc[xx]);
    }
}

/* box_thumb's 1024 bytes into out; -1 when out of memory. */
static int thumb_of(const uint8_t *g, Py_ssize_t h, Py_ssize_t w, uint8_t *out)
{
    int *hb = NULL, *vb = NULL;
    int32_t *hk = NULL, *vk = NULL;
    uint8_t *tmp = NULL;
    int hks = box_coeffs(w, THUMB_SIDE, &hb, &hk), vks = hks ? box_coeffs(h, THUMB_SIDE, &vb, &vk) : 0;
    if (hks && vks)
        tmp = malloc((size_t)h * THUMB_SIDE);
    if (tmp) {
        resample_rows(g, h, w, tmp, hb, hk, hks);    /* h x THUMB_SIDE */
        resample_columns(tmp, out, vb, vk, vks);     /* THUMB_SIDE x THUMB_SIDE */
    }
    free(hb), free(hk), free(vb), free(vk), free(tmp);
    return tmp ? 0 : -1;
}

/* Image.resize((32, 32), Image.Resampling.BOX) of an 'L' image given as its (h, w) uint8 array, h <= w:
 * the 1024 bytes of hashing.thumb. Like Pillow, a horizontal pass rounded to 8 bits, then a vertical
 * one (a pass whose size does not change, which Pillow skips, has weights of exactly
 * 1 << PRECISION_BITS here: the identity). For taller images Pillow 13 sometimes runs the vertical
 * pass first, which rounds differently, by a rule not reproduced here: those are refused and stay
 * with Pillow (tests compare with Pillow on every h <= w up to 160). */
static PyObject *box_thumb(PyObject *self, PyObject *arg)
{
    enum { SIDE = THUMB_SIDE };
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (b.ndim != 2 || b.itemsize != 1 || (b.format && strcmp(b.format, "B") != 0) || b.shape[0] < 1
        || b.shape[0] > b.shape[1]) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "box_thumb needs a non-empty C-contiguous (h, w) uint8 array with h <= w");
        return NULL;
    }
    uint8_t out[SIDE * SIDE];
    PyObject *result = thumb_of(b.buf, b.shape[0], b.shape[1], out) ? PyErr_NoMemory()
                       : PyBytes_FromStringAndSize((const char *)out, sizeof(out));
    PyBuffer_Release(&b);
    return result;
}

/* hashing.phash of the 32x32 thumbnail p, with dct (8 x 32 doubles) hashing._DCT8: low = dct @ p @ dct.T,
 * bit = low > median + tolerance, most significant first. The products run in another order than
 * numpy's (BLAS), ~1e-13 apart; the tolerance (hashing.PHASH_TOLERANCE x the largest |low|) keeps
 * both off the coefficients that rounding alone puts above or below the median (flat images). */
static int64_t phash_of(const uint8_t *p, const double *dct)
{
    double a[8][32], low[64], sorted[64], top = 0.0;
    for (int i = 0; i < 8; i++)
        for (int c = 0; c < 32; c++) {
            double s = 0.0;
            for (int r = 0; r < 32; r++)
                s += dct[32 * i + r] * (double)p[32 * r + c];
            a[i][c] = s;
        }
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 8; k++) {
            double s = 0.0;
            for (int c = 0; c < 32; c++)
                s += a[i][c] * dct[32 * k + c];
            low[8 * i + k] = s;
            top = fabs(s) > top ? fabs(s) : top;
        }
    memcpy(sorted, low, sizeof(low));
    for (int i = 1; i < 64; i++) {   /* insertion sort: 64 values */
        double v = sorted[i];
        int j = i - 1;
        for (; j >= 0 && sorted[j] > v; j--)
            sorted[j + 1] = sorted[j];
        sorted[j + 1] = v;
    }
    double cut = (sorted[31] + sorted[32]) * 0.5 + PHASH_TOLERANCE * top;
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++)
        bits = (bits << 1) | (uint64_t)(low[i] > cut);
    return (int64_t)bits;
}

/* thumb_prints' dhash bits and tiny bytes of the 32x32 thumbnail p. */
static void prints_of(const uint8_t *p, uint64_t *bits_out, char *tiny)
{
    /* np.linspace(0, 32, 10).astype(int): hashing._COLS9's column groups */
    static const int edges[10] = {0, 3, 7, 10, 14, 17, 21, 24, 28, 32};
    uint64_t bits = 0;
    for (int r = 0; r < 8; r++) {
        /* hashing.dhash: 8 x 9 cell sums over 4 rows (numpy has the means, a quarter of these: exact) */
        int32_t sums[9] = {0};
        for (int y = 4 * r; y < 4 * r + 4; y++)
            for (int c = 0; c < 9; c++)
                for (int x = edges[c]; x < edges[c + 1]; x++)
                    sums[c] += p[32 * y + x];
        /* cell means compared without dividing: right > left <=> sum_r * size_l > sum_l * size_r;
         * bits most significant first, row by row (np.packbits, big-endian) */
        for (int c = 0; c < 8; c++)
            bits = (bits << 1) | (uint64_t)(sums[c + 1] * (edges[c + 1] - edges[c]) > sums[c] * (edges[c + 2] - edges[c + 1]));
    }
    /* hashing.tiny: Pillow's reduce(2), (2x2 sum + 2) >> 2 */
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            const uint8_t *q = p + 64 * y + 2 * x;
            tiny[16 * y + x] = (char)((q[0] + q[1] + q[32] + q[33] + 2) >> 2);
        }
    *bits_out = bits;
}

/* hashing.dhash and hashing.tiny of a 32x32 thumbnail's bytes -> (dhash as a signed int64, tiny bytes).
 * Both are integer arithmetic in numpy/Pillow too, so these are the same bits and bytes. */
static PyObject *thumb_prints(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    if (b.len != 32 * 32) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "thumb_prints needs the 1024 bytes of a 32x32 'L' thumbnail");
        return NULL;
    }
    uint64_t bits;
    char tiny[16 * 16];
    prints_of(b.buf, &bits, tiny);
    PyBuffer_Release(&b);
    return Py_BuildValue("(Ly#)", (long long)(int64_t)bits, tiny, (Py_ssize_t)sizeof(tiny));
}

/* measure(pixels, h, w, channels, dct) -> (pixel_stats tuple, thumb bytes, phash, dhash, tiny bytes): what
 * decode.measure_bytes needs from a decoded 'L' (channels 1) or 'RGB' (channels 3) image given as
 * Image.tobytes(), h <= w, in one call: the luminance, pixel_stats, box_thumb, thumb_prints and phash_of
 * above, without the arrays and calls between them (dct: the bytes of hashing._DCT8). */
static PyObject *measure(PyObject *self, PyObject *args)
{
    Py_buffer b, dct;
    Py_ssize_t h, w;
    int channels;
    if (!PyArg_ParseTuple(args, "y*nniy*:measure", &b, &h, &w, &channels, &dct))
        return NULL;
    if ((channels != 1 && channels != 3) || h < 1 || h > w || b.len != h * w * channels
        || dct.len != 8 * 32 * (Py_ssize_t)sizeof(double)) {
        PyBuffer_Release(&b);
        PyBuffer_Release(&dct);
        PyErr_SetString(PyExc_ValueError, "measure needs the h * w * channels bytes of an 'L' or 'RGB' image, "
                        "1 <= h <= w, and the 8 x 32 float64 DCT rows");
        return NULL;
    }
    uint8_t *gray = channels == 3 ? malloc((size_t)(h * w)) : (uint8_t *)b.buf;
    double out[N_STATS];
    uint8_t thumb[THUMB_SIDE * THUMB_SIDE];
    char tiny[16 * 16];
    uint64_t bits = 0;
    int64_t phash = 0;
    int failed = gray == NULL;
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        if (channels == 3)
            luma(b.buf, gray, h * w);
        failed = stats_of(gray, h, w, channels == 3 ? b.buf : NULL, out) || thumb_of(gray, h, w, thumb);
        if (!failed) {
            prints_of(thumb, &bits, tiny);
            phash = phash_of(thumb, dct.buf);
        }
        Py_END_ALLOW_THREADS
    }
    if (channels == 3)
        free(gray);
    PyBuffer_Release(&b);
    PyBuffer_Release(&dct);
    if (failed)
        return PyErr_NoMemory();
    return Py_BuildValue("(dddddddddddddddd)y#LLy#", out[0], out[1], out[2], out[3], out[4], out[5], out[6],
                         out[7], out[8], out[9], out[10], out[11], out[12], out[13], out[14], out[15], (const char *)thumb, (Py_ssize_t)sizeof(thumb),
                         (long long)phash, (long long)(int64_t)bits, tiny, (Py_ssize_t)sizeof(tiny));
}

static PyMethodDef methods[] = {
    {"luminance", luminance, METH_O,
     "luminance(rgb) -> the bytes of Image.convert('L') of a (h, w, 3) uint8 array, as Pillow computes them."},
    {"box_thumb", box_thumb, METH_O,
     "box_thumb(gray) -> the 32x32 BOX thumbnail's 1024 bytes of a (h, w) uint8 array, h <= w, as Pillow's resize."},
    {"thumb_prints", thumb_prints, METH_O,
     "thumb_prints(thumb) -> (hashing.dhash, hashing.tiny) of the 1024 bytes of a 32x32 grayscale thumbnail."},
    {"pixel_stats", pixel_stats, METH_VARARGS,
     "pixel_stats(gray, rgb) -> the 16 values of properties.PIXEL_STATS for a (h, w) uint8 gray array and, "
     "for colour images, the same image as an (h, w, 3) uint8 array (else None)."},
    {"measure", measure, METH_VARARGS,
     "measure(pixels, h, w, channels, dct) -> (pixel_stats, box_thumb, phash, dhash, tiny) of an 'L' or 'RGB' "
     "image's h * w * channels bytes (h <= w), in one call; dct: the bytes of hashing._DCT8."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pixelstats", "Compiled per-image properties.", -1, methods};

/* Raised whenever a function's arguments or results change: properties.py ignores a module built from
 * an older copy of this file (a checkout updated without re-running pip install -e .). */
#define KERNEL_VERSION 4

PyMODINIT_FUNC PyInit__pixelstats(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "VERSION", KERNEL_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
