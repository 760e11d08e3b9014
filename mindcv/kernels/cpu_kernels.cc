// Fused fp32 CPU kernels for Twins, and a bf16 matmul, called through MindSpore's ops.Custom ("aot").
//
// Every entry point has MindSpore's AOT signature: params holds the inputs, then the outputs, as
// contiguous row-major buffers, and dtypes their element types. Anything but float32 is refused with a
// non-zero return, which MindSpore raises as a RuntimeError naming the function and the code. Tensors are
// channels-last, so the innermost loops run over channels and vectorise. Work is split over a pool of
// threads that poll for the next call for 100 us, then sleep on a condition variable, rather than OpenMP, whose
// spinning idle workers took the cores from MindSpore's own thread pool. Scratch buffers are per call, never
// thread_local: glibc never unloads a library that registered a thread_local destructor, and its pool would outlive
// MindSpore's dlclose.
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// exp as 2^n * e^r with |r| <= ln(2)/2 and Cephes' polynomial for e^r (relative error < 4e-6 over the whole
// range, ~1e-7 where GELU uses it). Written out rather than std::exp so that the loops vectorise without
// -ffinite-math-only, which would break NaN propagation. NaN stays NaN.
inline float Exp(float x) {
  x = std::clamp(x, -87.0f, 88.0f);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return (p * r * r + r + 1.0f) * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

// erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): erf(a) = 1 - ErfPoly(a) * exp(-a^2) for a >= 0.
inline float ErfPoly(float a) {
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  return t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
}

// erf as x * P(x^2) / Q(x^2) on [-4, 4] (Eigen's float32 rational approximation, |error| < 4e-7; +-1 to float32
// precision beyond): half the vector operations of 1 - ErfPoly * exp, for the forward GELU, which needs erf alone.
// The slope needs the density phi too, whose exp the A&S form shares, so the backward keeps that form.
inline float RationalErf(float x) {
  x = std::clamp(x, -4.0f, 4.0f);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  for (const float c : {2.77068142495902e-08f, -2.10102402082508e-06f, -5.69250639462346e-05f, -7.34990630326855e-04f,
                        -2.95459980854025e-03f, -1.60960333262415e-02f}) {
    p = p * x2 + c;
  }
  float q = -1.45660718464996e-05f;
  for (const float c : {-2.13374055278905e-04f, -1.68282697438203e-03f, -7.37332916720468e-03f,
                        -1.42647390514189e-02f}) {
    q = q * x2 + c;
  }
  return x * p / q;
}

int NumThreads() {
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) return std::max(CPU_COUNT(&cpus), 1);
  return std::max(static_cast<int>(std::thread::hardware_concurrency()), 1);
}

// One ParallelFor call: body(chunk, begin, end) on ``chunks`` contiguous chunks of [0, n).
struct Job {
  void (*run)(const void *body, int chunk, int64_t begin, int64_t end);
  const void *body;
  int chunks;
  int64_t n;

  void RunChunk(int chunk) const { run(body, chunk, n * chunk / chunks, n * (chunk + 1) / chunks); }
};

// How long a thread of the pool waits for the next job, or for the other chunks of its own, before it sleeps. A
// sleeping thread took 50-80 us to wake in the VMs this was measured on (the Xeon, family 6 model 167, 2026-12-04),
// a polling one 3 us, and a compiled graph starts its next kernel a median 47 us after the last one ends.
constexpr int64_t kSpinMicroseconds = 100;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// NumThreads() - 1 workers, started once; between jobs they poll for kSpinMicroseconds, then sleep.
class ThreadPool {
 public:
  ThreadPool() : owner_(getpid()), size_(NumThreads()) {
    for (int index = 1; index < size_; ++index) {
      workers_.emplace_back([this, index] { Work(index); });
      pthread_setname_np(workers_.back().native_handle(), "mindcv-kernels");
    }
  }

  // Runs at exit and when MindSpore unloads the library: the workers must leave its code before it is unmapped.
  ~ThreadPool() {
    if (Forked()) {
      for (std::thread &worker : workers_) worker.detach();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread &worker : workers_) worker.join();
  }

  int size() const { return size_; }

  // Runs ``job``: chunk 0 on this thread, chunk i on worker i. Callers on several threads take turns, since
  // each job uses every core anyway.
  void Run(const Job &job) {
    if (job.chunks == 1 || Forked()) {
      for (int chunk = 0; chunk < job.chunks; ++chunk) job.RunChunk(chunk);
      return;
    }
    std::lock_guard<std::mutex> turn(turn_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      pending_.store(job.chunks - 1);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    job.RunChunk(0);
    if (SpinUntil([this] { return pending_.load() == 0; })) return;
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_.load() == 0; });
  }

 private:
  // Polls ``ready`` for up to kSpinMicroseconds; returns whether it became true.
  template <typename Ready>
  static bool SpinUntil(const Ready &ready) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicroseconds);
    while (!ready()) {
      if (std::chrono::steady_clock::now() >= deadline) return ready();
      CpuRelax();
    }
    return true;
  }

  // A forked child (a data loader, say) has a copy of the pool's memory but none of its threads.
  bool Forked() const { return getpid() != owner_; }

  void Work(int index) {
    uint64_t seen = 0;
    for (;;) {
      SpinUntil([&] { return generation_.load() != seen; });
      Job job{};
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
        if (stop_) return;
        seen = generation_.load();
        job = job_;
      }
      if (index >= job.chunks) continue;
      job.RunChunk(index);
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  const pid_t owner_;
  const int size_;
  std::vector<std::thread> workers_;
  std::mutex turn_;   // one job at a time
  std::mutex mutex_;  // guards job_ and stop_, and orders the sleeps and wakes
  std::condition_variable wake_, done_;
  Job job_{};
  std::atomic<int> pending_{0};  // chunks of job_ that workers have not finished
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

ThreadPool &Pool() {
  static ThreadPool pool;
  return pool;
}

// The most chunks ParallelFor makes: the size of per-chunk partial-sum buffers.
int MaxChunks() { return Pool().size(); }

// Every chunk, the caller's included, runs this one compiled copy of a body: noipa keeps the compiler from
// inlining it into, or specialising it for, a caller, where -ffast-math would round each copy its own way. So a
// row's result does not depend on the chunk it falls in: neither on the batch size nor on the number of threads.
template <typename Body>
[[gnu::noipa]] void RunBody(const void *body, int chunk, int64_t begin, int64_t end) {
  (*static_cast<const Body *>(body))(chunk, begin, end);
}

// Calls body(chunk, begin, end) on up to MaxChunks() contiguous chunks of [0, n) of at least min_per_chunk
// each, in parallel; returns the number of chunks.
template <typename Body>
int ParallelFor(int64_t n, int64_t min_per_chunk, const Body &body) {
  const int chunks = static_cast<int>(std::clamp<int64_t>(n / std::max<int64_t>(min_per_chunk, 1), 1, MaxChunks()));
  Pool().Run({RunBody<Body>, &body, chunks, n});
  return chunks;
}

constexpr int kWrongDtype = 2;

bool AllFloat32(int nparam, const char **dtypes) {
  return std::all_of(dtypes, dtypes + nparam, [](const char *dtype) { return std::strcmp(dtype, "float32") == 0; });
}

// An allocator that leaves new elements of trivial types uninitialised, for Buffer.
template <typename T>
struct Uninitialized : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = Uninitialized<U>;
  };
  template <typename U>
  void construct(U *p) {
    ::new (static_cast<void *>(p)) U;
  }
};

// Scratch that is written before it is read: a std::vector whose elements start unset. Value-initialised, the bf16
// conversions' and the activations' buffers cost a pass over memory each: memset took 2.6 % of svt_small's bf16
// training step (perf), which ran 0.95-0.96x its time without it, pcpvt_small's 1.00-1.02x (Xeon family 6 model 207,
// 2 threads, batch 8, medians of 10 alternations).
template <typename T>
using Buffer = std::vector<T, Uninitialized<T>>;

int64_t NumElements(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

// A tensor (..., C) seen as rows of C channels.
struct Rows {
  int64_t rows;
  int64_t channels;
};

Rows AsRows(int ndim, const int64_t *shape) {
  const int64_t channels = shape[ndim - 1];
  return {NumElements(ndim, shape) / channels, channels};
}

// The per-chunk partial sums (``width`` floats per chunk) added up into ``out``.
void SumChunks(const std::vector<float> &partial, int chunks, int64_t width, float *out) {
  std::fill(out, out + width, 0.0f);
  for (int t = 0; t < chunks; ++t) {
    for (int64_t i = 0; i < width; ++i) out[i] += partial[static_cast<size_t>(t) * width + i];
  }
}

// Depthwise 3x3 weights (C, 1, 3, 3) rearranged to (9, C) so that the channel loop is contiguous;
// ``flip`` turns the correlation into its transpose for the input gradient.
std::vector<float> TapsByChannel(const float *weight, int64_t channels, bool flip) {
  std::vector<float> taps(9 * channels);
  for (int64_t c = 0; c < channels; ++c) {
    for (int k = 0; k < 9; ++k) taps[(flip ? 8 - k : k) * channels + c] = weight[c * 9 + k];
  }
  return taps;
}

// out = x + bias + sum over the 3x3 neighbourhood of taps * src (zero padding), per channel.
// With x = src this is the PEG forward; with x = src = dy and flipped taps it is its input gradient.
void Depthwise3x3Residual(const float *src, const float *taps, const float *bias, float *out, int64_t batch,
                          int64_t height, int64_t width, int64_t channels) {
  ParallelFor(batch * height, 1, [=](int, int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / height, h = row % height;
      for (int64_t w = 0; w < width; ++w) {
        float *dst = out + ((b * height + h) * width + w) * channels;
        const float *centre = src + ((b * height + h) * width + w) * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) dst[c] = centre[c] + (bias ? bias[c] : 0.0f);
        for (int i = 0; i < 3; ++i) {
          const int64_t y = h + i - 1;
          if (y < 0 || y >= height) continue;
          for (int j = 0; j < 3; ++j) {
            const int64_t x = w + j - 1;
            if (x < 0 || x >= width) continue;
            const float *tap = taps + (i * 3 + j) * channels;
            const float *in = src + ((b * height + y) * width + x) * channels;
#pragma omp simd
            for (int64_t c = 0; c < channels; ++c) dst[c] += tap[c] * in[c];
          }
        }
      }
    }
  });
}

constexpr int64_t kElementsPerChunk = 1 << 14;

struct RowMoments {
  float mean;
  float rstd;
};

// Mean and 1/sqrt(biased variance + eps) of one row, two-pass as the reference computes them.
inline RowMoments Moments(const float *row, int64_t channels, float eps) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < channels; ++c) sum += row[c];
  const float mean = sum / channels;
  float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
  for (int64_t c = 0; c < channels; ++c) squares += (row[c] - mean) * (row[c] - mean);
  return {mean, 1.0f / std::sqrt(squares / channels + eps)};
}

// One row of gelu(x + bias), the exact (erf) GELU z * Phi(z).
inline void BiasGeluRow(const float *x, const float *bias, int64_t channels, float *out) {
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) {
    const float z = x[c] + bias[c];
    out[c] = 0.5f * z * (1.0f + RationalErf(z * kInvSqrt2));
  }
}

// ``rows`` rows of gelu(x + bias).
inline void BiasGeluRows(const float *x, const float *bias, int64_t rows, int64_t channels, float *out) {
  for (int64_t r = 0; r < rows; ++r) BiasGeluRow(x + r * channels, bias, channels, out + r * channels);
}

// gelu(z) = z * Phi(z) and its slope Phi(z) + z * phi(z), from the one exp that Phi's erf and the density phi share:
// exp(-(z / sqrt 2)^2) = sqrt(2 pi) * phi(z).
inline void GeluAndSlope(float z, float *gelu, float *slope) {
  const float a = std::fabs(z * kInvSqrt2);
  const float e = Exp(-a * a);
  const float cdf = 0.5f * (1.0f + std::copysign(1.0f - ErfPoly(a) * e, z));
  *gelu = z * cdf;
  *slope = cdf + z * kInvSqrt2Pi * e;
}

// ``rows`` rows of gelu(x + bias) and of its slope.
inline void BiasGeluSlopeRows(const float *x, const float *bias, int64_t rows, int64_t channels, float *gelu,
                              float *slope) {
  for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t i = r * channels + c;
      GeluAndSlope(x[i] + bias[c], gelu + i, slope + i);
    }
  }
}

// One row of the gradient through gelu(x + bias) from its slope: dx = dy * slope, added to dbias too. dx may be dy.
inline void SlopeGradRow(const float *slope, const float *dy, int64_t channels, float *dx, float *dbias) {
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) {
    const float grad = dy[c] * slope[c];
    dx[c] = grad;
    dbias[c] += grad;
  }
}

// One row of the gradient of gelu(x + bias): dx = dy * (Phi(z) + z * phi(z)), added to dbias too.
inline void BiasGeluGradRow(const float *x, const float *bias, const float *dy, int64_t channels, float *dx,
                            float *dbias) {
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) {
    float gelu, slope;
    GeluAndSlope(x[c] + bias[c], &gelu, &slope);
    const float grad = dy[c] * slope;
    dx[c] = grad;
    dbias[c] += grad;
  }
}

// oneDNN's row-major C = alpha * op(A) op(B) + beta * C with bf16 A and B and fp32 accumulation and C. MindSpore
// loads its own libdnnl.so.3 when imported; it is looked up there rather than linked, so that the library builds
// without oneDNN and only the kernels that multiply need it. Its threadpool runtime runs a call on the calling thread.
using GemmBf16 = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t *a,
                         int64_t lda, const uint16_t *b, int64_t ldb, float beta, float *c, int64_t ldc);

// ``name`` from the libdnnl.so.3 that MindSpore loaded; nullptr when it is not loaded or lacks the function.
template <typename Function>
Function OneDnnFunction(const char *name) {
  void *library = dlopen("libdnnl.so.3", RTLD_NOW | RTLD_NOLOAD);
  return library ? reinterpret_cast<Function>(dlsym(library, name)) : nullptr;
}

GemmBf16 OneDnnGemmBf16() {
  static const GemmBf16 gemm = OneDnnFunction<GemmBf16>("dnnl_gemm_bf16bf16f32");
  return gemm;
}

// fp32 to bf16, rounding to nearest even as the hardware conversion does; NaN stays a (quiet) NaN.
inline uint16_t ToBf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  return (bits & 0x7fffffffu) > 0x7f800000u ? static_cast<uint16_t>((bits >> 16) | 0x40u)
                                              : static_cast<uint16_t>(rounded);
}

#if defined(__x86_64__)
// 32 at a time by VCVTNE2PS2BF16: the same rounding, but subnormal inputs become zero.
[[gnu::target("avx512f,avx512bw,avx512bf16")]] void ToBf16Avx512(const float *src, int64_t n, uint16_t *dst) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(dst + i, reinterpret_cast<__m512i>(pair));
  }
  for (; i < n; ++i) dst[i] = ToBf16(src[i]);
}
#endif

void ToBf16(const float *src, int64_t n, uint16_t *dst) {
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("avx512bf16");
  if (hardware) return ToBf16Avx512(src, n, dst);
#endif
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = ToBf16(src[i]);
}

constexpr int kNoOneDnn = 3;
// Rows of a dense layer's input are made, converted and multiplied a block of about this many elements at a time, so
// that the block stays in the L2 cache.
constexpr int64_t kGemmBlockElements = 1 << 17;
constexpr int64_t kGemmMinRows = 64;
constexpr int64_t kGemmMinColumns = 64;

// fn(first, count) on consecutive blocks of at most ``block`` rows of [begin, end).
template <typename Fn>
void ForRowBlocks(int64_t begin, int64_t end, int64_t block, const Fn &fn) {
  for (int64_t first = begin; first < end; first += block) fn(first, std::min(block, end - first));
}

// ``n`` floats as bf16, converted in parallel.
Buffer<uint16_t> ToBf16Parallel(const float *src, int64_t n) {
  Buffer<uint16_t> out(static_cast<size_t>(n));
  uint16_t *dst = out.data();
  ParallelFor(n, kElementsPerChunk, [=](int, int64_t begin, int64_t end) {
    ToBf16(src + begin, end - begin, dst + begin);
  });
  return out;
}

using Sgemm = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

// oneDNN's row-major fp32 GEMM, found the same way: it takes a leading dimension per operand, so one head's
// channels are multiplied where they lie, without the transposes that splitting heads costs otherwise.
Sgemm OneDnnSgemm() {
  static const Sgemm gemm = OneDnnFunction<Sgemm>("dnnl_sgemm");
  return gemm;
}

// The precisions the dense-layer kernels multiply in: fp32 operands as they are (oneDNN's sgemm), or operands
// rounded to bf16 with fp32 sums (its bf16 GEMM). Operand() gives fp32 data as the GEMM's operand, converted into
// ``scratch`` where the precision needs it.
struct Fp32 {
  using Element = float;
  static constexpr bool kConverts = false;
  static Sgemm Gemm() { return OneDnnSgemm(); }
  static const float *Operand(const float *src, int64_t, float *) { return src; }
};

struct Bf16 {
  using Element = uint16_t;
  static constexpr bool kConverts = true;
  static GemmBf16 Gemm() { return OneDnnGemmBf16(); }
  static const uint16_t *Operand(const float *src, int64_t n, uint16_t *scratch) {
    ToBf16(src, n, scratch);
    return scratch;
  }
};

bool IntelAvx512() {
#if defined(__x86_64__)
  static const bool intel_avx512 = __builtin_cpu_is("intel") && __builtin_cpu_supports("avx512f");
  return intel_avx512;
#else
  return false;
#endif
}

// Whether oneDNN's GEMM in precision P multiplies an operand transposed in memory about as fast as a plain one. Its
// fp32 sgemm on the Intel Xeon (family 6 model 167, AVX-512) does: there a transposed copy of a weight gradient's
// left operand cost more than it saved, the direct product being 6-25 % faster on every such gradient of svt_small
// and pcpvt_small (2 threads, 2026-12-04). Elsewhere it does not: on a Zen 3 EPYC a transposed left operand ran at
// about half the plain rate (72 against 164 GFLOP/s for (1568, 1024), 2 cores); on the Zen 4 EPYC (family 25 model
// 17) a dense layer's weight (N, K), the transposed right operand, at 0.85-0.98x the rate of its (K, N) copy on one
// core, and 0.63x at the 8 x 8 patch convolution's (N 64, K 4096).
template <typename P>
bool SgemmTakesTransposedOperands() {
  return std::is_same_v<P, Fp32> && IntelAvx512();
}

#if defined(__x86_64__)
// dst's 8 rows (``ld_dst`` apart) = the transpose of src's 8 x 8 block (rows ``ld_src`` apart), in registers.
[[gnu::target("avx2")]] void Transpose8x8(const float *src, int64_t ld_src, float *dst, int64_t ld_dst) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// The same for 16-bit elements (bf16), by SSE2, which every x86-64 CPU has.
void Transpose8x8(const uint16_t *src, int64_t ld_src, uint16_t *dst, int64_t ld_dst) {
  __m128i r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i *>(src + i * ld_src));
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm_unpacklo_epi16(r[i], r[i + 1]);
    t[i + 1] = _mm_unpackhi_epi16(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm_unpacklo_epi32(t[i], t[i + 2]);
    r[i + 1] = _mm_unpackhi_epi32(t[i], t[i + 2]);
    r[i + 2] = _mm_unpacklo_epi32(t[i + 1], t[i + 3]);
    r[i + 3] = _mm_unpackhi_epi32(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    _mm_storeu_si128(reinterpret_cast<__m128i *>(dst + 2 * i * ld_dst), _mm_unpacklo_epi64(r[i], r[i + 4]));
    _mm_storeu_si128(reinterpret_cast<__m128i *>(dst + (2 * i + 1) * ld_dst), _mm_unpackhi_epi64(r[i], r[i + 4]));
  }
}
#endif

// dst (cols, rows) = src (rows, cols), src's rows ``ld`` elements apart and dst's ``ld_dst`` (default: rows); a tile
// at a time, so that both stay in the cache, and 8 x 8 blocks in registers where the CPU has the instructions (fp32:
// AVX2, 6-10x the element-wise copy on the EPYC, family 25 model 17).
template <typename T>
void Transpose(const T *src, int64_t rows, int64_t cols, int64_t ld, T *dst, int64_t ld_dst = 0) {
  if (ld_dst == 0) ld_dst = rows;
  constexpr int64_t kTile = 32;
#if defined(__x86_64__)
  static const bool avx2 = std::is_same_v<T, float> && __builtin_cpu_supports("avx2");
#endif
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(r0 + kTile, rows), c1 = std::min(c0 + kTile, cols);
      int64_t r8 = r0, c8 = c0;
#if defined(__x86_64__)
      if (std::is_same_v<T, uint16_t> || avx2) {
        r8 = r0 + (r1 - r0) / 8 * 8;
        c8 = c0 + (c1 - c0) / 8 * 8;
        for (int64_t r = r0; r < r8; r += 8)
          for (int64_t c = c0; c < c8; c += 8) Transpose8x8(src + r * ld + c, ld, dst + c * ld_dst + r, ld_dst);
      }
#endif
      // What the 8 x 8 blocks left: the tile's last columns, then the last rows of its other columns.
      for (int64_t c = c8; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) dst[c * ld_dst + r] = src[r * ld + c];
      for (int64_t c = c0; c < c8; ++c)
        for (int64_t r = r8; r < r1; ++r) dst[c * ld_dst + r] = src[r * ld + c];
    }
  }
}

// The (cols, rows) transpose of src (rows, cols), its rows ``ld_dst`` elements apart (default: rows; the elements
// between zero), in parallel by bands of its columns.
template <typename T>
Buffer<T> TransposedParallel(const T *src, int64_t rows, int64_t cols, int64_t ld_dst = 0) {
  if (ld_dst == 0) ld_dst = rows;
  Buffer<T> out(static_cast<size_t>(ld_dst * cols));
  T *dst = out.data();
  ParallelFor(cols, 32, [=](int, int64_t begin, int64_t end) {
    Transpose(src + begin, rows, end - begin, cols, dst + begin * ld_dst, ld_dst);
  });
  return out;
}

// The row length (in floats) to lay out a GEMM's fp32 right operand of ``columns`` columns with: rows a multiple of
// 2 KB apart fall into few sets of the L1 cache as the GEMM reads down them, so such rows get 64 bytes more. On 2
// threads of the Zen 4 EPYC (family 25 model 17), oneDNN's sgemm multiplied right operands 1024 wide at 175-213
// GFLOP/s against 218-224 with the longer rows (K 128 and 256, 256-1000 rows a call; an input gradient by a (256,
// 1024) weight 174 against 218), and 2048 wide 182 against 230; limited to its AVX2 code, 512 wide 140-162 against
// 222-225, 2048 wide 73 against 220. Other widths ran level either way.
int64_t UnaliasedRowLength(int64_t columns) { return columns % 512 == 0 ? columns + 16 : columns; }

// A GEMM's right operand: ``rows`` rows of ``columns`` elements, ``ld`` apart at ``src``, as it is, or in fp32 copied
// with rows UnaliasedRowLength apart where ``ld`` is one that UnaliasedRowLength lengthens. The copy runs on the
// calling thread, which may be one of the pool's.
template <typename T>
struct RightOperand {
  Buffer<T> copy;
  const T *data;
  int64_t ld;

  RightOperand(const T *src, int64_t rows, int64_t columns, int64_t src_ld) : data(src), ld(src_ld) {
    if (!std::is_same_v<T, float> || UnaliasedRowLength(src_ld) == src_ld) return;
    ld = UnaliasedRowLength(columns);
    copy.resize(static_cast<size_t>(rows * ld));
    for (int64_t r = 0; r < rows; ++r) std::copy(src + r * src_ld, src + r * src_ld + columns, copy.data() + r * ld);
    data = copy.data();
  }
};

// Room for ``n`` elements of precision P's converted operands; none where P multiplies fp32 as it is.
template <typename P>
Buffer<typename P::Element> Scratch(int64_t n) {
  return Buffer<typename P::Element>(P::kConverts ? static_cast<size_t>(n) : 0);
}

// A whole fp32 tensor as precision P's operand, converted once, in parallel, where P converts.
template <typename P>
struct WholeOperand {
  Buffer<typename P::Element> copy;
  const typename P::Element *data;

  WholeOperand(const float *src, int64_t n) {
    if constexpr (P::kConverts) {
      copy = ToBf16Parallel(src, n);
      data = copy.data();
    } else {
      data = src;
    }
  }
};

// Rows per block of a row-blocked GEMM: at least as many as the weight has rows, since oneDNN packs the whole
// weight again for every call.
int64_t GemmBlockRows(int64_t k, int64_t n) { return std::max({kGemmMinRows, kGemmBlockElements / k, n}); }

// The left operand's rows as they are in memory: ``x`` (M, K).
struct InputRows {
  static constexpr bool kWrites = false;
  const float *x;
  int64_t k;

  const float *operator()(int64_t first, int64_t, float *) const { return x + first * k; }
};

// ``rows`` rows of y (N wide) plus bias (N) and plus the same rows of ``residual`` (rows, N); each left out where null.
void AddBiasAndResidual(const float *bias, const float *residual, int64_t rows, int64_t n, float *y) {
  if (bias != nullptr) {
    for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) y[r * n + c] += bias[c];
    }
  }
  if (residual != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < rows * n; ++i) y[i] += residual[i];
  }
}

// The same on columns [first, last) of every row.
void AddBiasAndResidual(const float *bias, const float *residual, int64_t rows, int64_t n, int64_t first,
                        int64_t last, float *y) {
  for (int64_t r = 0; r < rows; ++r) {
    float *row = y + r * n;
    if (bias != nullptr) {
#pragma omp simd
      for (int64_t c = first; c < last; ++c) row[c] += bias[c];
    }
    if (residual != nullptr) {
#pragma omp simd
      for (int64_t c = first; c < last; ++c) row[c] += residual[r * n + c];
    }
  }
}

// Whether a product on ``rows`` rows splits its N output columns over the pool instead of its rows: where the rows
// are too few for more than one chunk (the last stage's 49 tokens of an image, the sub-sampled keys), which would
// leave every core but one idle.
bool ProductSplitsColumns(int64_t rows, int64_t n) {
  return rows > 0 && rows < 2 * kGemmMinRows && n >= 2 * kGemmMinColumns && MaxChunks() > 1;
}

// The part of oneDNN's C API (v3) that the AMX matmul below calls, declared here like the GEMM functions above;
// handles are opaque pointers, and the constants are those of oneDNN's dnnl_types.h.
namespace onednn {
using Handle = void *;
using Dims = int64_t[12];
struct ExecArg {
  int arg;
  Handle memory;
};
enum : int { kCpuEngine = 1, kBf16 = 2, kF32 = 3, kAnyFormat = 1, kUserScratchpad = 1 };
enum : int { kQueryImplInfo = 8, kQueryWeights = 131, kQueryScratchpad = 136 };
enum : int { kArgSrc = 1, kArgDst = 17, kArgWeights = 33, kArgScratchpad = 80, kArgFrom = kArgSrc, kArgTo = kArgDst };
constexpr int64_t kRuntimeDim = INT64_MIN;

struct Api {
  int (*engine_create)(Handle *, int, size_t);
  int (*desc_with_strides)(Handle *, int, const int64_t *, int, const int64_t *);
  int (*desc_with_tag)(Handle *, int, const int64_t *, int, int);
  int (*desc_destroy)(Handle);
  size_t (*desc_size)(Handle);
  int (*attr_create)(Handle *);
  int (*attr_scratchpad_mode)(Handle, int);
  int (*matmul_desc)(Handle *, Handle, Handle, Handle, Handle, Handle, Handle);
  int (*reorder_desc)(Handle *, Handle, Handle, Handle, Handle, Handle);
  int (*desc_query)(Handle, int, int, void *);
  Handle (*desc_query_md)(Handle, int, int);
  int (*primitive_create)(Handle *, Handle);
  int (*stream_create)(Handle *, Handle, void *);
  int (*memory_create)(Handle *, Handle, Handle, void *);
  int (*memory_destroy)(Handle);
  int (*execute)(Handle, Handle, int, const ExecArg *);

  bool Complete() const {
    const void *all[] = {reinterpret_cast<void *>(engine_create), reinterpret_cast<void *>(desc_with_strides),
                         reinterpret_cast<void *>(desc_with_tag), reinterpret_cast<void *>(desc_destroy),
                         reinterpret_cast<void *>(desc_size), reinterpret_cast<void *>(attr_create),
                         reinterpret_cast<void *>(attr_scratchpad_mode), reinterpret_cast<void *>(matmul_desc),
                         reinterpret_cast<void *>(reorder_desc), reinterpret_cast<void *>(desc_query),
                         reinterpret_cast<void *>(desc_query_md), reinterpret_cast<void *>(primitive_create),
                         reinterpret_cast<void *>(stream_create), reinterpret_cast<void *>(memory_create),
                         reinterpret_cast<void *>(memory_destroy), reinterpret_cast<void *>(execute)};
    return std::all_of(std::begin(all), std::end(all), [](const void *f) { return f != nullptr; });
  }
};

template <typename Function>
void Find(Function *function, const char *name) {
  *function = OneDnnFunction<Function>(name);
}

// The API from MindSpore's oneDNN, with a CPU engine; nullptr where it is not loaded or lacks a function.
const Api *Loaded(Handle *engine) {
  static Handle cpu = nullptr;
  static const Api *api = [] {
    static Api found;
    Find(&found.engine_create, "dnnl_engine_create");
    Find(&found.desc_with_strides, "dnnl_memory_desc_create_with_strides");
    Find(&found.desc_with_tag, "dnnl_memory_desc_create_with_tag");
    Find(&found.desc_destroy, "dnnl_memory_desc_destroy");
    Find(&found.desc_size, "dnnl_memory_desc_get_size");
    Find(&found.attr_create, "dnnl_primitive_attr_create");
    Find(&found.attr_scratchpad_mode, "dnnl_primitive_attr_set_scratchpad_mode");
    Find(&found.matmul_desc, "dnnl_matmul_primitive_desc_create");
    Find(&found.reorder_desc, "dnnl_reorder_primitive_desc_create");
    Find(&found.desc_query, "dnnl_primitive_desc_query");
    Find(&found.desc_query_md, "dnnl_primitive_desc_query_md");
    Find(&found.primitive_create, "dnnl_primitive_create");
    Find(&found.stream_create, "dnnl_threadpool_interop_stream_create");
    Find(&found.memory_create, "dnnl_memory_create");
    Find(&found.memory_destroy, "dnnl_memory_destroy");
    Find(&found.execute, "dnnl_primitive_execute");
    return found.Complete() && found.engine_create(&cpu, kCpuEngine, 0) == 0 ? &found : nullptr;
  }();
  *engine = cpu;
  return api;
}

// A row-major (rows, columns) descriptor of ``type``, ``stride`` elements between rows and 1 between columns (rows
// being rows and columns being columns, or the transpose: row stride 1, column stride ``stride``).
Handle Matrix(const Api &api, int64_t rows, int64_t columns, int type, int64_t row_stride, int64_t column_stride) {
  const Dims dims = {rows, columns}, strides = {row_stride, column_stride};
  Handle desc = nullptr;
  return api.desc_with_strides(&desc, 2, dims, type, strides) == 0 ? desc : nullptr;
}
}  // namespace onednn

// y (rows, N) = a (rows, K) @ w (N, K)^T by oneDNN's matmul primitive, which takes the weight packed once per call
// where the GEMM functions pack it again for every block of rows. In bf16 (fp32 sums) where oneDNN implements it with
// AMX: 1.3-3x the bf16 GEMM function's rate on Twins' layers up to 512 wide in and 1024 out on the Xeon (AMX-BF16,
// 2026-12-04); on wider layers only from kMinWideRows rows on (For). The same primitive, with the operands laid out as
// they come, multiplies a layer's two gradients (Form). In fp32 on a fixed number of rows (Fp32Layer).
class PackedMatmul {
 public:
  // How the operands of y (rows, N) = a (rows, K) @ b (K, N) lie in memory. kLayer: b is a dense layer's weight
  // (N, K), a is (rows, K). kInputGradient: b is (K, N) row-major, a is (rows, K). kWeightGradient: b is (K, N)
  // row-major, a is the transpose of a (K, rows) row-major matrix (a gradient dy, its K rows being a block of the
  // layer's rows).
  enum Form { kLayer, kInputGradient, kWeightGradient };

  // The bf16 matmul for (K, N) in ``form``, made once and kept; nullptr where it does not apply or oneDNN has no AMX
  // version. A weight gradient's K is a block of the layer's rows, and it applies wherever its input gradient does.
  static const PackedMatmul *For(int64_t rows, int64_t k, int64_t n, Form form = kLayer) {
    if (form == kLayer && rows < (k > kMaxIn || n > kMaxOut ? kMinWideRows : kMinRows)) return nullptr;
    if (form == kInputGradient && rows < kMinGradientRows) return nullptr;
    return Kept(k, n, form, onednn::kBf16, 0);
  }

  // The fp32 matmul of a layer (N, K) on blocks of exactly ``block`` of its ``rows`` rows, where oneDNN implements
  // it with its batch-reduce GEMM on packed weights: on Intel CPUs with AVX-512, for layers at least
  // kFp32MinLengthRatio times longer (K) than wide (N), an MLP's fc2. One core of the Xeon (family 6 model 207,
  // 2026-12-05) multiplied 256-row blocks of fc2 at 1.1-1.4x the sgemm function's rate at Twins' first three stages
  // (25088 x 512 by 64: 173-191 against 136-146 GFLOP/s), packing included, and svt_small's and pcpvt_small's
  // forwards ran 3-5 % faster; on other shapes the two ran level or the primitive behind, and on fewer rows packing
  // costs more than it saves.
  static const PackedMatmul *Fp32Layer(int64_t rows, int64_t block, int64_t k, int64_t n) {
    if (!IntelAvx512() || rows < kFp32MinRows || block < kMinRows || k < kFp32MinLengthRatio * n) return nullptr;
    return Kept(k, n, kLayer, onednn::kF32, block);
  }

  // The rows a call multiplies, where the matmul is made for a fixed number; 0 where any number.
  int64_t FixedRows() const { return fixed_rows_; }

  size_t PackedBytes() const { return packed_bytes_; }
  size_t ScratchBytes() const { return scratch_bytes_; }

  // The fp32 right operand b, laid out as the form says, as the primitive's weight (of its type), into ``packed``
  // (PackedBytes()).
  int Pack(const float *w, void *packed, void *scratch) const {
    return Run(reorder_, {{onednn::kArgFrom, plain_weight_, const_cast<float *>(w)},
                          {onednn::kArgTo, packed_weight_, packed},
                          {onednn::kArgScratchpad, scratch_, scratch}});
  }

  // y (rows, N) = a (rows, K) @ the packed weight, a being of the matmul's type (FixedRows() rows where fixed).
  int Multiply(const void *a, int64_t rows, const void *packed, float *y, void *scratch) const {
    const onednn::Api &api = *api_;
    onednn::Handle src = form_ == kWeightGradient ? onednn::Matrix(api, rows, k_, type_, 1, rows)
                                                  : onednn::Matrix(api, rows, k_, type_, k_, 1);
    onednn::Handle dst = onednn::Matrix(api, rows, n_, onednn::kF32, n_, 1);
    const int status = src && dst ? Run(matmul_, {{onednn::kArgSrc, src, const_cast<void *>(a)},
                                                  {onednn::kArgWeights, packed_weight_, const_cast<void *>(packed)},
                                                  {onednn::kArgDst, dst, y},
                                                  {onednn::kArgScratchpad, scratch_, scratch}})
                                  : kNoOneDnn;
    for (onednn::Handle desc : {src, dst})
      if (desc) api.desc_destroy(desc);
    return status;
  }

 private:
  static constexpr int64_t kMinRows = 256;  // below, packing the weight costs more than it saves
  static constexpr int64_t kMaxIn = 512, kMaxOut = 1024;
  // The fewest rows for a layer wider than kMaxIn in or kMaxOut out: an MLP kernel on 1568 rows (pcpvt_small's third
  // stage at batch 8, 320 -> 1280 -> 320) ran 0.74-0.77x its time by the GEMM function, on 6272 rows 0.52-0.65x, on
  // 392 rows (512 -> 2048 -> 512) 1.04-1.19x (Xeon family 6 model 207, 2 threads, 2026-12-06).
  static constexpr int64_t kMinWideRows = 1024;
  // A layer's gradients on fewer rows ran slower than by the GEMM function (392 rows: 0.6x), on 1568 and more rows
  // 1.0-1.7x at every width of svt_small and pcpvt_small (Xeon family 6 model 167, 2 threads, 2026-12-04).
  static constexpr int64_t kMinGradientRows = 1024;
  static constexpr int64_t kFp32MinRows = 1024, kFp32MinLengthRatio = 4;
  // An argument of a primitive: its number, and the descriptor of the data given.
  struct Bound {
    int arg;
    onednn::Handle desc;
    void *data;
  };

  // The matmul of ``type`` for (K, N) in ``form`` on ``fixed_rows`` rows (0: any), made once and kept.
  static const PackedMatmul *Kept(int64_t k, int64_t n, Form form, int type, int64_t fixed_rows) {
    using Key = std::tuple<int64_t, int64_t, Form, int, int64_t>;
    static std::mutex mutex;
    static auto *made = new std::vector<std::pair<Key, const PackedMatmul *>>();  // kept to exit
    std::lock_guard<std::mutex> lock(mutex);
    const Key key{k, n, form, type, fixed_rows};
    for (const auto &[shape, matmul] : *made)
      if (shape == key) return matmul;
    const PackedMatmul *matmul = Make(k, n, form, type, fixed_rows);
    made->emplace_back(key, matmul);
    return matmul;
  }

  static const PackedMatmul *Make(int64_t k, int64_t n, Form form, int type, int64_t fixed_rows) {
    onednn::Handle engine;
    const onednn::Api *api = onednn::Loaded(&engine);
    if (api == nullptr) return nullptr;
    auto *matmul = new PackedMatmul();
    matmul->api_ = api;
    matmul->engine_ = engine;
    matmul->k_ = k;
    matmul->n_ = n;
    matmul->form_ = form;
    matmul->type_ = type;
    matmul->fixed_rows_ = fixed_rows;
    if (matmul->Init()) return matmul;
    delete matmul;  // like the kept matmuls' oneDNN objects, the few that Init made are never freed
    return nullptr;
  }

  bool Init() {
    const onednn::Api &api = *api_;
    onednn::Handle attr = nullptr;
    if (api.attr_create(&attr) != 0 || api.attr_scratchpad_mode(attr, onednn::kUserScratchpad) != 0) return false;
    const onednn::Dims weight_dims = {k_, n_};
    const int64_t rows = fixed_rows_ ? fixed_rows_ : onednn::kRuntimeDim;
    onednn::Handle src = form_ == kWeightGradient ? onednn::Matrix(api, rows, k_, type_, 1, rows)
                                                  : onednn::Matrix(api, rows, k_, type_, k_, 1);
    onednn::Handle dst = onednn::Matrix(api, rows, n_, onednn::kF32, n_, 1);
    onednn::Handle any_weight = nullptr, matmul_desc = nullptr, reorder_desc = nullptr;
    if (!src || !dst || api.desc_with_tag(&any_weight, 2, weight_dims, type_, onednn::kAnyFormat) != 0 ||
        api.matmul_desc(&matmul_desc, engine_, src, any_weight, nullptr, dst, attr) != 0 ||
        !PacksWeights(matmul_desc))
      return false;
    packed_weight_ = api.desc_query_md(matmul_desc, onednn::kQueryWeights, 0);
    // A layer's weight (N, K) row-major is the (K, N) operand with row stride 1 and column stride K.
    plain_weight_ = form_ == kLayer ? onednn::Matrix(api, k_, n_, onednn::kF32, 1, k_)
                                    : onednn::Matrix(api, k_, n_, onednn::kF32, n_, 1);
    if (!plain_weight_ ||
        api.reorder_desc(&reorder_desc, plain_weight_, engine_, packed_weight_, engine_, attr) != 0 ||
        api.primitive_create(&matmul_, matmul_desc) != 0 || api.primitive_create(&reorder_, reorder_desc) != 0)
      return false;
    scratch_ = LargerScratchpad(matmul_desc, reorder_desc);
    packed_bytes_ = api.desc_size(packed_weight_);
    scratch_bytes_ = api.desc_size(scratch_);
    return true;
  }

  // Whether oneDNN's implementation for ``desc`` is the one this class is for: AMX in bf16, in fp32 the batch-reduce
  // GEMM (brgemm), which multiplies the packed weight; its fp32 alternative packs it again like the GEMM function.
  bool PacksWeights(onednn::Handle desc) const {
    const char *implementation = nullptr;
    return api_->desc_query(desc, onednn::kQueryImplInfo, 0, &implementation) == 0 && implementation != nullptr &&
           std::strstr(implementation, type_ == onednn::kBf16 ? "amx" : "brg") != nullptr;
  }

  onednn::Handle LargerScratchpad(onednn::Handle first, onednn::Handle second) const {
    onednn::Handle a = api_->desc_query_md(first, onednn::kQueryScratchpad, 0);
    onednn::Handle b = api_->desc_query_md(second, onednn::kQueryScratchpad, 0);
    return api_->desc_size(a) >= api_->desc_size(b) ? a : b;
  }

  // Executes ``primitive`` on this thread with the arguments ``bound``.
  template <size_t N>
  int Run(onednn::Handle primitive, const Bound (&bound)[N]) const {
    thread_local onednn::Handle stream = nullptr;  // with no threadpool: a call runs on the calling thread
    if (stream == nullptr && api_->stream_create(&stream, engine_, nullptr) != 0) return kNoOneDnn;
    onednn::ExecArg args[N];
    int status = 0;
    for (size_t i = 0; i < N; ++i) {
      args[i] = {bound[i].arg, nullptr};
      if (status == 0) status = api_->memory_create(&args[i].memory, bound[i].desc, engine_, bound[i].data);
    }
    if (status == 0) status = api_->execute(primitive, stream, N, args);
    for (const onednn::ExecArg &arg : args)
      if (arg.memory) api_->memory_destroy(arg.memory);
    return status == 0 ? 0 : 100 + status;
  }

  const onednn::Api *api_ = nullptr;
  onednn::Handle engine_ = nullptr, matmul_ = nullptr, reorder_ = nullptr;
  onednn::Handle plain_weight_ = nullptr, packed_weight_ = nullptr, scratch_ = nullptr;
  int64_t k_ = 0, n_ = 0, fixed_rows_ = 0;
  Form form_ = kLayer;
  int type_ = onednn::kBf16;
  size_t packed_bytes_ = 0, scratch_bytes_ = 0;
};

// Bytes aligned for the vector loads of oneDNN's kernels.
struct AlignedBytes {
  explicit AlignedBytes(size_t size) : data(size ? std::aligned_alloc(64, (size + 63) / 64 * 64) : nullptr) {}
  ~AlignedBytes() { std::free(data); }
  AlignedBytes(const AlignedBytes &) = delete;
  AlignedBytes &operator=(const AlignedBytes &) = delete;
  void *data;
};

constexpr int64_t kTransposedWeightMinRows = 1024;
constexpr int64_t kTransposedWeightMinRatio = 8;
constexpr int64_t kTransposedWeightFewestRows = 256;

// A dense layer's weight w (N, K), made ready to multiply the ``rows`` rows of a (M, K) by, ``block`` rows a call (0:
// a chunk of the pool's at once), in precision P: by the packed matmul where it applies, otherwise by oneDNN's GEMM
// function, which packs the weight anew for each call, in fp32 from a transposed copy where that is faster
// (MultipliesTransposedCopy). Blocks of other sizes than the fp32 packed matmul's go through the GEMM function.
template <typename P>
class DenseWeight {
 public:
  DenseWeight(const float *w, int64_t rows, int64_t block, int64_t k, int64_t n)
      : k_(k), n_(n),
        matmul_(P::kConverts ? PackedMatmul::For(rows, k, n) : PackedMatmul::Fp32Layer(rows, block, k, n)),
        packed_(matmul_ ? matmul_->PackedBytes() : 0),
        plain_(P::kConverts && matmul_ ? nullptr : w, P::kConverts && matmul_ ? 0 : n * k) {
    if (matmul_ != nullptr) {
      AlignedBytes scratch(matmul_->ScratchBytes());
      status_ = matmul_->Pack(w, packed_.data, scratch.data);
    } else if (P::Gemm() == nullptr) {
      status_ = kNoOneDnn;
    } else if (MultipliesTransposedCopy(rows, k, n)) {
      transposed_ld_ = UnaliasedRowLength(n);
      transposed_ = TransposedParallel(plain_.data, n, k, transposed_ld_);
    }
  }

  int status() const { return status_; }
  size_t ScratchBytes() const { return matmul_ ? matmul_->ScratchBytes() : 0; }

  // y (count, N) = a (count, K) @ w^T, with ``scratch`` (ScratchBytes()) of the calling thread's own.
  int Multiply(const typename P::Element *a, int64_t count, float *y, void *scratch) const {
    if (matmul_ != nullptr && (P::kConverts || count == matmul_->FixedRows())) {
      return matmul_->Multiply(a, count, packed_.data, y, scratch);
    }
    return MultiplyColumns(a, count, 0, n_, y);
  }

  // Columns [first, last) of the same product, by the GEMM function, into those columns of y (count, N).
  int MultiplyColumns(const typename P::Element *a, int64_t count, int64_t first, int64_t last, float *y) const {
    const int64_t cols = last - first;
    const int result =
        transposed_.empty()
            ? P::Gemm()('N', 'T', count, cols, k_, 1.0f, a, k_, plain_.data + first * k_, k_, 0.0f, y + first, n_)
            : P::Gemm()('N', 'N', count, cols, k_, 1.0f, a, k_, transposed_.data() + first, transposed_ld_, 0.0f,
                        y + first, n_);
    return result == 0 ? 0 : 100 + result;
  }

  // Whether this layer's product on ``rows`` rows splits its columns (ProductSplitsColumns; not the packed matmul).
  bool SplitsColumns(int64_t rows) const { return matmul_ == nullptr && ProductSplitsColumns(rows, n_); }

 private:
  // Whether the fp32 GEMM multiplies a (K, N) copy of the weight, where SgemmTakesTransposedOperands says it is
  // slower on the weight as it lies: for kTransposedWeightMinRows rows or more, or a weight at least
  // kTransposedWeightMinRatio times longer (K) than wide (N), whose product is slowest, or whose rows K long
  // UnaliasedRowLength would lengthen (392 rows by 2048 x 512: 3.64 against 4.32 ms). On fewer rows of a wide layer,
  // copying cost more than it saved otherwise (392 rows by 512 x 1536: 0.95x, Zen 4 EPYC, 2 threads), and under
  // kTransposedWeightFewestRows rows always: there the copy of every weight of the last stage (and of the
  // sub-sampling convolutions) cost more than the products it sped up, so that without it the forward at batch 1
  // took 0.62x (svt_small) and 0.77x (pcpvt_small) its time, at batch 4 0.79x and 0.94x, and at batch 8 (392 rows)
  // copying or not ran level (Zen 3 EPYC, family 25 model 1, 2 threads, medians of 16-40 alternations).
  static bool MultipliesTransposedCopy(int64_t rows, int64_t k, int64_t n) {
    return std::is_same_v<P, Fp32> && !SgemmTakesTransposedOperands<P>() &&
           (rows >= kTransposedWeightMinRows ||
            (rows >= kTransposedWeightFewestRows &&
             (k >= kTransposedWeightMinRatio * n || UnaliasedRowLength(k) != k)));
  }

  int64_t k_, n_;
  const PackedMatmul *matmul_;
  AlignedBytes packed_;
  WholeOperand<P> plain_;
  Buffer<typename P::Element> transposed_;
  int64_t transposed_ld_ = 0;
  int status_ = 0;
};

// RowBlockedGemm's product on rows too few to split: all of a made and converted at once, then its output columns
// split over the pool.
template <typename P, typename Rows>
int ColumnSplitGemm(const Rows &rows_of, int64_t m, int64_t k, const DenseWeight<P> &weight, int64_t n,
                    const float *bias, float *y, const float *residual) {
  Buffer<float> made(Rows::kWrites ? static_cast<size_t>(m * k) : 0);
  auto converted = Scratch<P>(m * k);
  const auto *a = P::Operand(rows_of(0, m, made.data()), m * k, converted.data());
  std::atomic<int> status{0};
  ParallelFor(n, kGemmMinColumns, [&](int, int64_t first, int64_t last) {
    const int result = weight.MultiplyColumns(a, m, first, last, y);
    if (result != 0) status = result;
    AddBiasAndResidual(bias, residual, m, n, first, last, y);
  });
  return status;
}

// y (M, N) = a (M, K) @ w (N, K)^T + bias (N) + residual (M, N) in precision P (bias and residual optional), a's rows
// being made by ``rows_of``. Rows are split over the pool and made, converted, multiplied and given the bias and
// residual a block at a time, while in the cache; rows that need neither making nor converting are multiplied a
// chunk at a time.
template <typename P, typename Rows>
int RowBlockedGemm(const Rows &rows_of, int64_t m, int64_t k, const float *w, int64_t n, const float *bias,
                   float *y, const float *residual = nullptr) {
  const int64_t block = P::kConverts || Rows::kWrites ? GemmBlockRows(k, n) : m;
  const DenseWeight<P> weight(w, m, block == m ? 0 : block, k, n);
  if (weight.status() != 0) return weight.status();
  if (weight.SplitsColumns(m)) return ColumnSplitGemm(rows_of, m, k, weight, n, bias, y, residual);
  std::atomic<int> status{0};
  ParallelFor(m, kGemmMinRows, [&](int, int64_t begin, int64_t end) {
    const int64_t most = std::min(block, end - begin) * k;
    Buffer<float> made(Rows::kWrites ? static_cast<size_t>(most) : 0);
    auto converted = Scratch<P>(most);
    AlignedBytes scratch(weight.ScratchBytes());
    ForRowBlocks(begin, end, block, [&](int64_t first, int64_t count) {
      const auto *a = P::Operand(rows_of(first, count, made.data()), count * k, converted.data());
      const int result = weight.Multiply(a, count, y + first * n, scratch.data);
      if (result != 0) status = result;
      AddBiasAndResidual(bias, residual ? residual + first * n : nullptr, count, n, y + first * n);
    });
  });
  return status;
}

// MlpRows on rows too few to split: fc1 and GELU with the hidden columns split over the pool, then fc2 with its
// output columns split.
template <typename P>
int ColumnSplitMlp(const float *x, int64_t m, int64_t c, const DenseWeight<P> &fc1, const float *b1, int64_t hidden,
                   const DenseWeight<P> &fc2, const float *b2, int64_t n, const float *residual, float *y,
                   float *h_out) {
  auto x_converted = Scratch<P>(m * c), h_converted = Scratch<P>(m * hidden);
  const auto *a = P::Operand(x, m * c, x_converted.data());
  Buffer<float> act(static_cast<size_t>(m * hidden));
  float *h = h_out != nullptr ? h_out : act.data();
  std::atomic<int> status{0};
  ParallelFor(hidden, kGemmMinColumns, [&](int, int64_t first, int64_t last) {
    const int result = fc1.MultiplyColumns(a, m, first, last, h);
    if (result != 0) status = result;
    for (int64_t r = 0; r < m; ++r) {
      BiasGeluRow(h + r * hidden + first, b1 + first, last - first, act.data() + r * hidden + first);
    }
  });
  const auto *g = P::Operand(act.data(), m * hidden, h_converted.data());
  ParallelFor(n, kGemmMinColumns, [&](int, int64_t first, int64_t last) {
    const int result = fc2.MultiplyColumns(g, m, first, last, y);
    if (result != 0) status = result;
    AddBiasAndResidual(b2, residual, m, n, first, last, y);
  });
  return status;
}

// y (M, N) = gelu(x @ w1^T + b1) @ w2^T + b2 + residual of x (M, C), w1 (H, C), b1 (H), w2 (N, H), b2 (N),
// residual (M, N) (optional) in precision P: a whole MLP and the residual connection after it a block of rows at a
// time, so that its (M, H) activations, the largest tensor of the model, never leave the cache. Where ``h_out``
// (M, H) is given (training), x @ w1^T is written there too, for the backward.
template <typename P>
int MlpRows(const float *x, int64_t m, int64_t c, const float *w1, const float *b1, int64_t hidden, const float *w2,
            const float *b2, int64_t n, const float *residual, float *y, float *h_out = nullptr) {
  const int64_t block = GemmBlockRows(hidden, n);
  const DenseWeight<P> fc1(w1, m, block, c, hidden), fc2(w2, m, block, hidden, n);
  if (fc1.status() != 0 || fc2.status() != 0) return fc1.status() ? fc1.status() : fc2.status();
  if (fc1.SplitsColumns(m) && fc2.SplitsColumns(m)) {
    return ColumnSplitMlp(x, m, c, fc1, b1, hidden, fc2, b2, n, residual, y, h_out);
  }
  std::atomic<int> status{0};
  ParallelFor(m, kGemmMinRows, [&](int, int64_t begin, int64_t end) {
    const int64_t most = std::min(block, end - begin);
    Buffer<float> act(static_cast<size_t>(most * hidden));
    auto x_converted = Scratch<P>(most * c), h_converted = Scratch<P>(most * hidden);
    AlignedBytes scratch(std::max(fc1.ScratchBytes(), fc2.ScratchBytes()));
    ForRowBlocks(begin, end, block, [&](int64_t first, int64_t count) {
      const auto *a = P::Operand(x + first * c, count * c, x_converted.data());
      float *h = h_out != nullptr ? h_out + first * hidden : act.data();
      int result = fc1.Multiply(a, count, h, scratch.data);
      BiasGeluRows(h, b1, count, hidden, act.data());
      const auto *g = P::Operand(act.data(), count * hidden, h_converted.data());
      result = result ? result : fc2.Multiply(g, count, y + first * n, scratch.data);
      if (result != 0) status = result;
      AddBiasAndResidual(b2, residual != nullptr ? residual + first * n : nullptr, count, n, y + first * n);
    });
  });
  return status;
}

// A channels-last grid x (B, H, W, C) as the rows of a kernel == stride == p convolution: patch (b, i, j) is row
// (b * gh + i) * gw + j of a (B * gh * gw, p * p * C) matrix, with its values in (patch row, patch column, channel)
// order. Grid rows and columns beyond the last whole patch are left out, as the strided convolution leaves them.
struct PatchGrid {
  int64_t batch, height, width, channels, patch, gh, gw;

  int64_t Rows() const { return batch * gh * gw; }
  int64_t RowLength() const { return patch * patch * channels; }
  int64_t StripLength() const { return patch * channels; }
  // Where strip ``py`` (patch row py: p * C contiguous values) of patch ``row`` starts in the grid.
  int64_t Strip(int64_t row, int64_t py) const {
    const int64_t b = row / (gh * gw), i = row / gw % gh, j = row % gw;
    return ((b * height + i * patch + py) * width + j * patch) * channels;
  }
};

constexpr int kBadPatch = 5;

// False unless the weight is a square (N, C, p, p) conv weight for the grid's C channels, p no more than the grid's
// height and width.
bool GetPatchGrid(const int64_t *x_shape, const int64_t *weight_shape, PatchGrid *grid) {
  const int64_t p = weight_shape[2];
  if (weight_shape[3] != p || weight_shape[1] != x_shape[3] || p > x_shape[1] || p > x_shape[2]) return false;
  *grid = {x_shape[0], x_shape[1], x_shape[2], x_shape[3], p, x_shape[1] / p, x_shape[2] / p};
  return true;
}

// A conv weight (N, C, p, p) as GEMM rows (N, p * p * C) in the patches' order, or, with ``to_conv``, such rows
// back as the conv weight, into ``out``: each output channel's (C, p * p) block transposed.
void ReorderPatchWeight(const float *w, int64_t n, const PatchGrid &g, bool to_conv, float *out) {
  const int64_t taps = g.patch * g.patch, c = g.channels;
  ParallelFor(n, 1, [=](int, int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      if (to_conv) Transpose(w + o * taps * c, taps, c, c, out + o * c * taps);
      else Transpose(w + o * c * taps, c, taps, taps, out + o * taps * c);
    }
  });
}

// Patches [first, first + count) copied out of x as rows.
void GatherPatches(const PatchGrid &g, const float *x, int64_t first, int64_t count, float *rows) {
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t py = 0; py < g.patch; ++py) {
      std::memcpy(rows + r * g.RowLength() + py * g.StripLength(), x + g.Strip(first + r, py),
                  g.StripLength() * sizeof(float));
    }
  }
}

// The GEMM's left operand as patches of a grid, gathered a block at a time into the scratch.
struct PatchRows {
  static constexpr bool kWrites = true;
  const float *x;
  PatchGrid grid;

  const float *operator()(int64_t first, int64_t count, float *scratch) const {
    GatherPatches(grid, x, first, count, scratch);
    return scratch;
  }
};

// dbias (N) = dy (M, N) summed over its rows.
void ColumnSums(const float *dy, int64_t rows, int64_t channels, float *dbias) {
  std::vector<float> partial(static_cast<size_t>(MaxChunks()) * channels, 0.0f);
  const int chunks = ParallelFor(rows, kElementsPerChunk / channels, [&](int chunk, int64_t begin, int64_t end) {
    float *acc = partial.data() + static_cast<size_t>(chunk) * channels;
    for (int64_t row = begin; row < end; ++row) {
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) acc[c] += dy[row * channels + c];
    }
  });
  SumChunks(partial, chunks, channels, dbias);
}

// Elements of a transposed left operand made at a time for a weight gradient's GEMM.
constexpr int64_t kTransposedElements = 1 << 20;
// The fewest columns of a weight gradient for which transposing its left operand pays: the transpose moves 1/K as
// many elements as the GEMM multiplies.
constexpr int64_t kTransposeMinColumns = 256;

// Whether a weight gradient K wide multiplies a transposed copy of its left operand rather than that operand
// transposed in place: where SgemmTakesTransposedOperands says it does not, from kTransposeMinColumns on.
template <typename P>
bool CopiesTransposedOperand(int64_t k) {
  return k >= kTransposeMinColumns && !SgemmTakesTransposedOperands<P>();
}

// dw (N, K) (+)= g^T @ a for g (M, N) and a (M, K), rows ``ldg`` and ``lda`` elements apart, N being a band of the
// weight's rows, with g's transpose made a block of rows at a time where CopiesTransposedOperand. ``beta`` 0
// overwrites dw, 1 adds to it. Returns oneDNN's status.
template <typename P>
int WeightGradient(const typename P::Element *g, int64_t ldg, const typename P::Element *a, int64_t lda, int64_t m,
                   int64_t n, int64_t k, float beta, float *dw) {
  if (!CopiesTransposedOperand<P>(k)) return P::Gemm()('T', 'N', n, k, m, 1.0f, g, ldg, a, lda, beta, dw, k);
  const int64_t block = std::max(kGemmMinRows, kTransposedElements / n);
  Buffer<typename P::Element> g_t(static_cast<size_t>(n * std::min(block, m)));
  int status = 0;
  ForRowBlocks(0, m, block, [&](int64_t first, int64_t count) {
    Transpose(g + first * ldg, count, n, ldg, g_t.data());
    const RightOperand<typename P::Element> right(a + first * lda, count, k, lda);
    const int result = P::Gemm()('N', 'N', n, k, count, 1.0f, g_t.data(), count, right.data, right.ld,
                                 first == 0 ? beta : 1.0f, dw, k);
    if (result != 0) status = result;
  });
  return status;
}

// dw (N, K) = g^T @ a of whole operands g (M, N) and a (M, K) in precision P, split over the pool by bands of dw's
// rows, each summing over all M. Returns 0, or 100 + oneDNN's status.
template <typename P>
int BandedWeightGradient(const typename P::Element *g, const typename P::Element *a, int64_t m, int64_t n, int64_t k,
                         float *dw) {
  std::atomic<int> status{0};
  ParallelFor(n, 16, [&](int, int64_t begin, int64_t end) {
    const int result = WeightGradient<P>(g + begin, n, a, k, m, end - begin, k, 0.0f, dw + begin * k);
    if (result != 0) status = 100 + result;
  });
  return status;
}

// dw (N, K) = dy^T @ x of bf16 dy (M, N) and fp32 x (M, K) rows [begin, end), by the AMX matmul with those rows of x
// packed as its weight where oneDNN has one for the shape, otherwise by its bf16 GEMM. Returns 0 or a status.
int AmxWeightGradient(const uint16_t *dy, const float *x, int64_t begin, int64_t end, int64_t n, int64_t k,
                      float *dw) {
  const int64_t count = end - begin;
  const PackedMatmul *matmul = PackedMatmul::For(n, count, k, PackedMatmul::kWeightGradient);
  if (matmul == nullptr) {
    Buffer<uint16_t> rows(static_cast<size_t>(count * k));
    ToBf16(x + begin * k, count * k, rows.data());
    const int result = WeightGradient<Bf16>(dy + begin * n, n, rows.data(), k, count, n, k, 0.0f, dw);
    return result == 0 ? 0 : 100 + result;
  }
  AlignedBytes packed(matmul->PackedBytes()), scratch(matmul->ScratchBytes());
  const int result = matmul->Pack(x + begin * k, packed.data, scratch.data);
  return result != 0 ? result : matmul->Multiply(dy + begin * n, n, packed.data, dw, scratch.data);
}

// A layer's weight w (N, K) made ready for its input gradient dx (count, K) = g (count, N) @ w a block of rows at a
// time, in precision P: in bf16 by AMX's matmul with w packed once, where PackedMatmul::For gives one for the call's
// ``rows``, otherwise by the GEMM function, which packs w again for every block. The MLP backward took 0.89-0.91x
// (svt_small) and 0.76-0.85x (pcpvt_small) its time per step by the GEMM function with it, the bf16 training step
// 0.96-1.04x (within the VM's spread) and 0.84-0.96x (Xeon family 6 model 207, 2 threads, batch 8, two runs).
template <typename P>
class GradientWeight {
 public:
  GradientWeight(const float *w, int64_t rows, int64_t n, int64_t k)
      : n_(n), k_(k),
        matmul_(P::kConverts ? PackedMatmul::For(rows, n, k, PackedMatmul::kInputGradient) : nullptr),
        packed_(matmul_ ? matmul_->PackedBytes() : 0), plain_(matmul_ ? nullptr : w, matmul_ ? 0 : n * k),
        right_(plain_.data, n, k, k) {
    if (matmul_ == nullptr) return;
    AlignedBytes scratch(matmul_->ScratchBytes());
    status_ = matmul_->Pack(w, packed_.data, scratch.data);
  }

  int status() const { return status_; }
  // Whether w is packed for AMX's matmul, whose weight gradients AmxWeightGradient then takes too.
  bool packed() const { return matmul_ != nullptr; }
  size_t ScratchBytes() const { return matmul_ ? matmul_->ScratchBytes() : 0; }

  // dx (count, K) = g (count, N) @ w, with ``scratch`` (ScratchBytes()) of the calling thread's own.
  int Multiply(const typename P::Element *g, int64_t count, float *dx, void *scratch) const {
    if (matmul_ != nullptr) return matmul_->Multiply(g, count, packed_.data, dx, scratch);
    return P::Gemm()('N', 'N', count, k_, n_, 1.0f, g, n_, right_.data, right_.ld, 0.0f, dx, k_);
  }

 private:
  int64_t n_, k_;
  const PackedMatmul *matmul_;
  AlignedBytes packed_;
  WholeOperand<P> plain_;
  RightOperand<typename P::Element> right_;
  int status_ = 0;
};

// LinearGradients in bf16 on AMX, w packed in ``weight``: dw split over the pool by blocks of M, each chunk's
// partial sum packing its rows of x.
int AmxLinearGradients(const GradientWeight<Bf16> &weight, const float *dy_data, const float *x, int64_t m, int64_t n,
                       int64_t k, float *dx, float *dw, float *dbias) {
  const Buffer<uint16_t> dy = ToBf16Parallel(dy_data, m * n);
  std::vector<float> dw_partial(static_cast<size_t>(MaxChunks() - 1) * n * k);
  std::atomic<int> status{0};
  const int chunks = ParallelFor(m, kGemmMinRows, [&](int chunk, int64_t begin, int64_t end) {
    AlignedBytes scratch(weight.ScratchBytes());
    int result = weight.Multiply(dy.data() + begin * n, end - begin, dx + begin * k, scratch.data);
    float *sum = chunk == 0 ? dw : dw_partial.data() + static_cast<size_t>(chunk - 1) * n * k;
    result = result ? result : AmxWeightGradient(dy.data(), x, begin, end, n, k, sum);
    if (result != 0) status = result;
  });
  ParallelFor(n * k, kElementsPerChunk, [&](int, int64_t begin, int64_t end) {
    for (int chunk = 1; chunk < chunks; ++chunk) {
      const float *partial = dw_partial.data() + static_cast<size_t>(chunk - 1) * n * k;
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) dw[i] += partial[i];
    }
  });
  if (dbias != nullptr) ColumnSums(dy_data, m, n, dbias);
  return status;
}

// The gradients of y = x (M, K) @ w (N, K)^T + bias in precision P, from dy (M, N): dx (M, K) = dy @ w and
// dw (N, K) = dy^T @ x, every operand converted once for both, and dbias (N) where it is not null. dx is split over
// the pool by rows, dw by bands of its rows (each summing over M); in bf16 on AMX as AmxLinearGradients does.
template <typename P>
int LinearGradients(const float *dy_data, const float *x_data, const float *w, int64_t m, int64_t n, int64_t k,
                    float *dx, float *dw, float *dbias) {
  if (P::Gemm() == nullptr) return kNoOneDnn;
  const GradientWeight<P> weight(w, m, n, k);
  if (weight.status() != 0) return weight.status();
  if constexpr (P::kConverts) {
    if (weight.packed()) return AmxLinearGradients(weight, dy_data, x_data, m, n, k, dx, dw, dbias);
  }
  const WholeOperand<P> dy(dy_data, m * n), x(x_data, m * k);
  std::atomic<int> status{0};
  ParallelFor(m, kGemmMinRows, [&](int, int64_t begin, int64_t end) {
    const int result = weight.Multiply(dy.data + begin * n, end - begin, dx + begin * k, nullptr);
    if (result != 0) status = 100 + result;
  });
  const int dw_status = BandedWeightGradient<P>(dy.data, x.data, m, n, k, dw);
  if (dbias != nullptr) ColumnSums(dy_data, m, n, dbias);
  return status != 0 ? status.load() : dw_status;
}

// The most activations (M * K) for which GeluLinearGradients recomputes them whole rather than a block at a time: a
// few rows per chunk make each chunk's partial dw (N, K) cost as much as its GEMM (392 x 2048 by 512: 8.6 against
// 5.5 ms whole, 2 threads of the Xeon, family 6 model 167), while at 6272 x 512 and more the blocks win.
constexpr int64_t kWholeGeluElements = 1 << 20;

// GeluLinearGradients with gelu(h + bias) and its slope made whole first: dw is then split over the pool by bands of
// its rows, as LinearGradients splits it, and dh by rows through ``weight``.
template <typename P>
int WholeGeluLinearGradients(const GradientWeight<P> &weight, const float *dy_data, const float *h, const float *bias,
                             int64_t m, int64_t n, int64_t k, float *dh, float *dbias, float *dw) {
  Buffer<float> act(static_cast<size_t>(m * k)), slope(act.size());
  ParallelFor(m, kGemmMinRows, [&](int, int64_t begin, int64_t end) {
    BiasGeluSlopeRows(h + begin * k, bias, end - begin, k, act.data() + begin * k, slope.data() + begin * k);
  });
  const WholeOperand<P> dy(dy_data, m * n), a(act.data(), m * k);
  std::atomic<int> status{BandedWeightGradient<P>(dy.data, a.data, m, n, k, dw)};
  std::vector<float> dbias_partial(static_cast<size_t>(MaxChunks()) * k, 0.0f);
  const int chunks = ParallelFor(m, kGemmMinRows, [&](int chunk, int64_t begin, int64_t end) {
    AlignedBytes scratch(weight.ScratchBytes());
    const int result = weight.Multiply(dy.data + begin * n, end - begin, dh + begin * k, scratch.data);
    if (result != 0) status = 100 + result;
    float *dbias_sum = dbias_partial.data() + static_cast<size_t>(chunk) * k;
    for (int64_t r = begin; r < end; ++r) SlopeGradRow(slope.data() + r * k, dh + r * k, k, dh + r * k, dbias_sum);
  });
  SumChunks(dbias_partial, chunks, k, dbias);
  return status;
}

// One block's share of GeluLinearGradients' blocked path, for ``count`` rows from dy (count, N) and h (count, K):
// gelu(h + bias) and its slope recomputed into the chunk's scratch, dw_sum (N, K) += dy^T @ gelu(h + bias), dh
// (count, K) = dy @ w, and ``grad`` (count, K) = dh * slope, fp32 (where it may be dh) or bf16, with dbias_sum (K) +=
// its column sums. Where P converts, the activations and ``grad`` go to bf16 a row at a time through one fp32 row in
// the L1 cache: whole blocks converted after GELU and after the slope cost a pass over the L2 cache each (a bf16 MLP
// backward at Twins' first two stages 0.80-1.00x its time, Xeon family 6 model 207, 2 threads, medians of 24).
template <typename P>
class GeluLinearBlockGradients {
 public:
  GeluLinearBlockGradients(const float *bias, const GradientWeight<P> &w, int64_t n, int64_t k, int64_t most_rows)
      : bias_(bias), w_(w), n_(n), k_(k), act_(static_cast<size_t>(P::kConverts ? k : most_rows * k)),
        slope_(static_cast<size_t>(most_rows * k)), act_converted_(Scratch<P>(most_rows * k)),
        dy_converted_(Scratch<P>(most_rows * n)), scratch_(w.ScratchBytes()) {}

  template <typename T>
  int operator()(const float *dy, const float *h, int64_t count, float *dh, T *grad, float *dw_sum,
                 float *dbias_sum) {
    const auto *a = Activations(h, count);
    const auto *g = P::Operand(dy, count * n_, dy_converted_.data());
    int result = WeightGradient<P>(g, n_, a, k_, count, n_, k_, 1.0f, dw_sum);
    result = result ? result : w_.Multiply(g, count, dh, scratch_.data);
    for (int64_t r = 0; r < count; ++r) {
      if constexpr (std::is_same_v<T, float>) {
        SlopeGradRow(slope_.data() + r * k_, dh + r * k_, k_, grad + r * k_, dbias_sum);
      } else {
        SlopeGradRow(slope_.data() + r * k_, dh + r * k_, k_, act_.data(), dbias_sum);
        ToBf16(act_.data(), k_, grad + r * k_);
      }
    }
    return result;
  }

 private:
  // gelu(h + bias) of ``count`` rows as P's operand, its slope into slope_; act_ holds them in fp32, or one row.
  const typename P::Element *Activations(const float *h, int64_t count) {
    if constexpr (P::kConverts) {
      for (int64_t r = 0; r < count; ++r) {
        BiasGeluSlopeRows(h + r * k_, bias_, 1, k_, act_.data(), slope_.data() + r * k_);
        ToBf16(act_.data(), k_, act_converted_.data() + r * k_);
      }
      return act_converted_.data();
    } else {
      BiasGeluSlopeRows(h, bias_, count, k_, act_.data(), slope_.data());
      return act_.data();
    }
  }

  const float *bias_;
  const GradientWeight<P> &w_;
  int64_t n_, k_;
  Buffer<float> act_, slope_;
  Buffer<typename P::Element> act_converted_, dy_converted_;
  AlignedBytes scratch_;
};

// The gradients of y = gelu(h (M, K) + bias (K)) @ w (N, K)^T + out_bias (N) in precision P, from dy (M, N): dh (M,
// K), dbias (K), dw (N, K), dout_bias (N). The activations and GELU's slope are recomputed, so the forward keeps only
// h: a block of rows at a time, each chunk summing its rows' dw and dbias, or, for few rows, whole.
template <typename P>
int GeluLinearGradients(const float *dy, const float *h, const float *bias, const float *w, int64_t m, int64_t n,
                        int64_t k, float *dh, float *dbias, float *dw, float *dout_bias) {
  if (P::Gemm() == nullptr) return kNoOneDnn;
  ColumnSums(dy, m, n, dout_bias);
  const GradientWeight<P> weight(w, m, n, k);
  if (weight.status() != 0) return weight.status();
  if (m * k <= kWholeGeluElements) return WholeGeluLinearGradients<P>(weight, dy, h, bias, m, n, k, dh, dbias, dw);
  const int64_t block = GemmBlockRows(k, n);
  std::vector<float> dw_partial(static_cast<size_t>(MaxChunks()) * n * k, 0.0f);
  std::vector<float> dbias_partial(static_cast<size_t>(MaxChunks()) * k, 0.0f);
  std::atomic<int> status{0};
  const int chunks = ParallelFor(m, kGemmMinRows, [&](int chunk, int64_t begin, int64_t end) {
    float *dw_sum = dw_partial.data() + static_cast<size_t>(chunk) * n * k;
    float *dbias_sum = dbias_partial.data() + static_cast<size_t>(chunk) * k;
    GeluLinearBlockGradients<P> gelu_linear(bias, weight, n, k, std::min(block, end - begin));
    ForRowBlocks(begin, end, block, [&](int64_t first, int64_t count) {
      const int result =
          gelu_linear(dy + first * n, h + first * k, count, dh + first * k, dh + first * k, dw_sum, dbias_sum);
      if (result != 0) status = 100 + result;
    });
  });
  SumChunks(dw_partial, chunks, n * k, dw);
  SumChunks(dbias_partial, chunks, k, dbias);
  return status;
}

// MlpGradients layer by layer: the hidden gradient made whole, then fc1's gradients from it.
template <typename P>
int LayerByLayerMlpGradients(const float *dy, const float *x, const float *h, const float *b1, const float *w1,
                             const float *w2, int64_t m, int64_t c, int64_t hidden, int64_t n, float *dx, float *dw1,
                             float *db1, float *dw2, float *db2) {
  Buffer<float> dh(static_cast<size_t>(m * hidden));
  const int status = GeluLinearGradients<P>(dy, h, b1, w2, m, n, hidden, dh.data(), db1, dw2, db2);
  return status != 0 ? status : LinearGradients<P>(dh.data(), x, w1, m, hidden, c, dx, dw1, nullptr);
}

// The fewest rows of a block of BlockedMlpGradients in bf16 on AMX: its products ran faster on 256 rows than on 128 at
// pcpvt_small's second stage (6272 x 128 -> 1024: 0.87-0.88x the time, Xeon family 6 model 207, 2 threads).
constexpr int64_t kAmxMlpGradientMinRows = 256;

// MlpGradients in precision P through both layers a block of rows at a time, each chunk summing its rows' weight
// gradients, on oneDNN's GEMM function.
template <typename P>
int BlockedMlpGradients(const float *dy, const float *x, const float *h, const float *b1, const float *w1,
                        const float *w2, int64_t m, int64_t c, int64_t hidden, int64_t n, float *dx, float *dw1,
                        float *db1, float *dw2, float *db2) {
  if (P::Gemm() == nullptr) return kNoOneDnn;
  const GradientWeight<P> fc2(w2, m, n, hidden), fc1(w1, m, hidden, c);
  if (fc2.status() != 0 || fc1.status() != 0) return fc2.status() != 0 ? fc2.status() : fc1.status();
  const int64_t block = P::kConverts && fc2.packed() ? std::max(kAmxMlpGradientMinRows, GemmBlockRows(hidden, n))
                                     : GemmBlockRows(hidden, n);
  const int most_chunks = MaxChunks();
  std::vector<float> dw2_partial(static_cast<size_t>(most_chunks) * n * hidden, 0.0f);
  std::vector<float> dw1_partial(static_cast<size_t>(most_chunks) * hidden * c, 0.0f);
  std::vector<float> db1_partial(static_cast<size_t>(most_chunks) * hidden, 0.0f);
  std::atomic<int> status{0};
  const int chunks = ParallelFor(m, kGemmMinRows, [&](int chunk, int64_t begin, int64_t end) {
    float *dw2_sum = dw2_partial.data() + static_cast<size_t>(chunk) * n * hidden;
    float *dw1_sum = dw1_partial.data() + static_cast<size_t>(chunk) * hidden * c;
    float *db1_sum = db1_partial.data() + static_cast<size_t>(chunk) * hidden;
    const int64_t most = std::min(block, end - begin);
    GeluLinearBlockGradients<P> gelu_fc2(b1, fc2, n, hidden, most);
    Buffer<float> dh(static_cast<size_t>(most * hidden));
    auto dh_converted = Scratch<P>(most * hidden), x_converted = Scratch<P>(most * c);
    typename P::Element *grad = dh_converted.data();
    if constexpr (!P::kConverts) grad = dh.data();
    AlignedBytes fc1_scratch(fc1.ScratchBytes());
    ForRowBlocks(begin, end, block, [&](int64_t first, int64_t count) {
      int result = gelu_fc2(dy + first * n, h + first * hidden, count, dh.data(), grad, dw2_sum, db1_sum);
      const auto *a = P::Operand(x + first * c, count * c, x_converted.data());
      result = result ? result : fc1.Multiply(grad, count, dx + first * c, fc1_scratch.data);
      result = result ? result : WeightGradient<P>(grad, hidden, a, c, count, hidden, c, 1.0f, dw1_sum);
      if (result != 0) status = 100 + result;
    });
  });
  SumChunks(dw2_partial, chunks, n * hidden, dw2);
  SumChunks(dw1_partial, chunks, hidden * c, dw1);
  SumChunks(db1_partial, chunks, hidden, db1);
  ColumnSums(dy, m, n, db2);
  return status;
}

// The fewest hidden activations (M * H) for which MlpGradients goes through both layers a block of rows at a time.
constexpr int64_t kBlockedMlpGradientElements = 1 << 21;

// The gradients of an MLP y = gelu(h + b1) @ w2^T + b2, h = x (M, C) @ w1 (H, C)^T, from dy (M, N) and the forward's
// h: dx (M, C), dw1 (H, C), db1 (H), dw2 (N, H), db2 (N). On kBlockedMlpGradientElements activations or more, both
// layers a block of rows at a time, so that the (M, H) hidden gradient is never written whole and read back twice:
// at the first two stages of svt_small and pcpvt_small (6.4-12.8M and 3.2-6.4M activations) 0.8x and 0.9x the
// layer-by-layer time in fp32, 0.6-0.8x and 0.8-0.9x in bf16, where the AMX matmuls leave the memory traffic the
// larger part; 1.0x at 2M (2 threads of the Xeon, family 6 model 207, 2026-12-06), where the whole gradient sits in
// the cache and fc1's weight gradient, one GEMM over all rows, costs less than its sums a block at a time.
// Otherwise layer by layer.
template <typename P>
int MlpGradients(const float *dy, const float *x, const float *h, const float *b1, const float *w1, const float *w2,
                 int64_t m, int64_t c, int64_t hidden, int64_t n, float *dx, float *dw1, float *db1, float *dw2,
                 float *db2) {
  if (m * hidden >= kBlockedMlpGradientElements) {
    return BlockedMlpGradients<P>(dy, x, h, b1, w1, w2, m, c, hidden, n, dx, dw1, db1, dw2, db2);
  }
  return LayerByLayerMlpGradients<P>(dy, x, h, b1, w1, w2, m, c, hidden, n, dx, dw1, db1, dw2, db2);
}

// One attention operand within tokens of (batch, length) rows, ld floats apart, starting at ``data`` (q, k or v's
// first channel): head h of batch b starts at data + b * length * ld + h * head_dim.
struct Operand {
  const float *data;
  int64_t length;
  int64_t ld;

  const float *Head(int64_t b, int64_t h, int64_t head_dim) const { return data + b * length * ld + h * head_dim; }
};

struct AttentionShape {
  int64_t batch, heads, head_dim, channels;
  float scale;
};

constexpr int kBadHeads = 4;

// False unless ``heads`` is a whole number of heads that divides the channels.
bool GetAttentionShape(int64_t batch, int64_t channels, float heads, AttentionShape *shape) {
  const int64_t h = static_cast<int64_t>(heads);
  if (h < 1 || static_cast<float>(h) != heads || channels % h != 0) return false;
  *shape = {batch, h, channels / h, channels, 1.0f / std::sqrt(static_cast<float>(channels / h))};
  return true;
}

// Each column of p (n, cols) becomes the softmax of its n entries, in place. The scores are kept transposed, one
// column per query, so that a strip of queries side by side fills the vector lanes and the max and sum reduce lane by
// lane: rows of Twins' 49 keys, four side by side, spent a third of the attention's time here (1.0 of 2.9 ms for the
// first stage's windows, 2 threads of the Xeon, family 6 model 167), now 1.2-1.3x faster as a whole.
void SoftmaxColumns(float *p, int64_t n, int64_t cols) {
  constexpr int64_t kStrip = 64;
  for (int64_t first = 0; first < cols; first += kStrip) {
    const int64_t width = std::min(kStrip, cols - first);
    float *strip = p + first;
    float top[kStrip], inverse_sum[kStrip] = {};
    std::copy(strip, strip + width, top);
    for (int64_t j = 1; j < n; ++j) {
#pragma omp simd
      for (int64_t c = 0; c < width; ++c) top[c] = std::max(top[c], strip[j * cols + c]);
    }
    for (int64_t j = 0; j < n; ++j) {
#pragma omp simd
      for (int64_t c = 0; c < width; ++c) {
        strip[j * cols + c] = Exp(strip[j * cols + c] - top[c]);
        inverse_sum[c] += strip[j * cols + c];
      }
    }
#pragma omp simd
    for (int64_t c = 0; c < width; ++c) inverse_sum[c] = 1.0f / inverse_sum[c];
    for (int64_t j = 0; j < n; ++j) {
#pragma omp simd
      for (int64_t c = 0; c < width; ++c) strip[j * cols + c] *= inverse_sum[c];
    }
  }
}

// Query rows per block: the block's scores (keys, rows) stay in the L1/L2 cache.
int64_t QueryBlock(int64_t keys) { return std::max<int64_t>(16, kGemmBlockElements / 8 / keys); }

#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
#else
constexpr int64_t kLanes = 8;
#endif
// kLanes floats as a vector register holds them, loaded from and stored to any float's address.
using Lanes = float __attribute__((vector_size(kLanes * sizeof(float)), aligned(alignof(float)), may_alias));
// A tile's accumulators, half the vector registers: up to kTileVectors vectors by up to kAccumulators / vectors rows.
constexpr int kAccumulators = kLanes;
constexpr int kTileVectors = kLanes / 4;

// out (R, V * kLanes) = beta * out + alpha * (w^T x) for a tile of R rows and V vectors, fixed so that its
// accumulators stay in registers: w (T, R) with w(t, r) at w[t * wt + r * wr], x (T, V * kLanes) rows ldx apart.
// beta 0 leaves out unread. The loops over R and V are unrolled whole: left as loops, GCC kept the accumulators in an
// array on the stack.
template <int R, int V>
void ProductTile(const float *w, int64_t wt, int64_t wr, const float *x, int64_t ldx, int64_t t_count, float alpha,
                 float beta, float *out, int64_t ldo) {
  Lanes acc[R][V];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) acc[r][v] = Lanes{};
  for (int64_t t = 0; t < t_count; ++t) {
    Lanes xs[V];
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) xs[v] = *reinterpret_cast<const Lanes *>(x + t * ldx + v * kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float weight = w[t * wt + r * wr];
#pragma GCC unroll 16
      for (int v = 0; v < V; ++v) acc[r][v] += weight * xs[v];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int v = 0; v < V; ++v) {
      auto *o = reinterpret_cast<Lanes *>(out + r * ldo + v * kLanes);
      if (beta == 0.0f) *o = alpha * acc[r][v];
      else *o = beta * *o + alpha * acc[r][v];
    }
  }
}

using Tile = void (*)(const float *, int64_t, int64_t, const float *, int64_t, int64_t, float, float, float *, int64_t);

template <int R, int V>
constexpr Tile TileOrNone() {
  if constexpr (R * V <= kAccumulators) return ProductTile<R, V>;
  return nullptr;
}

template <size_t... I>
constexpr std::array<Tile, sizeof...(I)> MakeTiles(std::index_sequence<I...>) {
  return {TileOrNone<I / kTileVectors + 1, I % kTileVectors + 1>()...};
}

// ProductTile for (rows, vectors) at kTiles[(rows - 1) * kTileVectors + vectors - 1], rows * vectors at most
// kAccumulators.
constexpr auto kTiles = MakeTiles(std::make_index_sequence<kAccumulators * kTileVectors>());

// The terms of a SmallProduct summed at a time: x's rows for them, a tile's columns wide, stay in the L1 cache while
// every tile of rows takes them.
constexpr int64_t kProductTerms = 64;

// out (rows, columns) = beta * out + alpha * (w^T x), w and x as ProductTile's, columns a whole number of vectors, a
// tile at a time.
void SmallProduct(const float *w, int64_t wt, int64_t wr, const float *x, int64_t ldx, int64_t t_count, int64_t rows,
                  int64_t columns, float alpha, float beta, float *out, int64_t ldo) {
  for (int64_t t = 0; t < t_count; t += kProductTerms) {
    const int64_t terms = std::min(kProductTerms, t_count - t);
    const float tile_beta = t == 0 ? beta : 1.0f;
    for (int64_t c = 0; c < columns; c += kTileVectors * kLanes) {
      const int64_t vectors = std::min<int64_t>(kTileVectors, (columns - c) / kLanes);
      for (int64_t r = 0; r < rows; r += kAccumulators / vectors) {
        const int64_t tile_rows = std::min<int64_t>(kAccumulators / vectors, rows - r);
        kTiles[(tile_rows - 1) * kTileVectors + vectors - 1](w + t * wt + r * wr, wt, wr, x + t * ldx + c, ldx, terms,
                                                             alpha, tile_beta, out + r * ldo + c, ldo);
      }
    }
  }
}

// The products of one head's attention on a block of its query rows, the scores kept (keys, Columns(rows)) as
// SoftmaxColumns takes them. Twins' 49 keys by a head's 32 or 64 channels make products so small that the GEMM
// function's cost per call outweighs much of their work, so where a head is a whole number of vectors wide they run
// by SmallProduct (the rows' block then transposed, its columns padded to whole vectors with zeros). Forward and
// backward, svt_small's windowed attention took 0.77-0.84x the GEMM function's time at every stage, the global
// attention on 196-3136 queries 0.92-1.00x, on the last stage's 49 0.82-0.85x (Xeon family 6 model 207, 2 threads,
// batch 8, fastest of 8 calls in three alternations, two runs). One per thread: it holds the transposed block.
class HeadProducts {
 public:
  HeadProducts(const AttentionShape &s, int64_t keys, int64_t block)
      : keys_(keys), d_(s.head_dim), small_(s.head_dim % kLanes == 0),
        transposed_(small_ ? static_cast<size_t>(s.head_dim * Columns(block)) : 0) {}

  int64_t Columns(int64_t rows) const { return small_ ? (rows + kLanes - 1) / kLanes * kLanes : rows; }

  // scores (keys, Columns(rows)) = alpha * a (keys, d) @ b (rows, d)^T, a's rows lda apart and b's ldb.
  int KeysByRows(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t rows, float alpha, float *scores) {
    const int64_t cols = Columns(rows);
    if (!small_) return OneDnnSgemm()('N', 'T', keys_, rows, d_, alpha, a, lda, b, ldb, 0.0f, scores, cols);
    Transpose(b, rows, d_, ldb, transposed_.data(), cols);
    for (int64_t c = 0; c < d_; ++c) {
      std::fill(transposed_.data() + c * cols + rows, transposed_.data() + (c + 1) * cols, 0.0f);
    }
    SmallProduct(a, 1, lda, transposed_.data(), cols, d_, keys_, cols, alpha, 0.0f, scores, cols);
    return 0;
  }

  // out (rows, d) = alpha * p^T @ x (keys, d): p (keys, Columns(rows)), x's rows ldx apart.
  int RowsByChannels(const float *p, int64_t rows, const float *x, int64_t ldx, float alpha, float *out,
                     int64_t ldo) const {
    const int64_t cols = Columns(rows);
    if (!small_) return OneDnnSgemm()('T', 'N', rows, d_, keys_, alpha, p, cols, x, ldx, 0.0f, out, ldo);
    SmallProduct(p, cols, 1, x, ldx, keys_, rows, d_, alpha, 0.0f, out, ldo);
    return 0;
  }

  // out (keys, d) = beta * out + alpha * p @ x (rows, d): p (keys, Columns(rows)), x's rows ldx apart.
  int KeysByChannels(const float *p, int64_t rows, const float *x, int64_t ldx, float alpha, float beta, float *out,
                     int64_t ldo) const {
    const int64_t cols = Columns(rows);
    if (!small_) return OneDnnSgemm()('N', 'N', keys_, d_, rows, alpha, p, cols, x, ldx, beta, out, ldo);
    SmallProduct(p, 1, cols, x, ldx, rows, keys_, d_, alpha, beta, out, ldo);
    return 0;
  }

 private:
  int64_t keys_, d_;
  bool small_;
  std::vector<float> transposed_;
};

// out = softmax(scale * q k^T) v for every batch entry and head, q, k, v and out in token layout. Work items are
// (batch, head, block of query rows).
int AttendForward(const Operand &q, const Operand &k, const Operand &v, float *out, const AttentionShape &s) {
  if (OneDnnSgemm() == nullptr) return kNoOneDnn;
  const int64_t keys = k.length, block = std::min(QueryBlock(keys), q.length);
  const int64_t blocks = (q.length + block - 1) / block;
  std::atomic<int> status{0};
  ParallelFor(s.batch * s.heads * blocks, 1, [&](int, int64_t begin, int64_t end) {
    HeadProducts products(s, keys, block);
    std::vector<float> scores(static_cast<size_t>(keys * products.Columns(block)));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (s.heads * blocks), h = item / blocks % s.heads, first = item % blocks * block;
      const int64_t rows = std::min(block, q.length - first);
      const float *q_rows = q.Head(b, h, s.head_dim) + first * q.ld;
      float *out_rows = out + (b * q.length + first) * s.channels + h * s.head_dim;
      int result = products.KeysByRows(k.Head(b, h, s.head_dim), k.ld, q_rows, q.ld, rows, s.scale, scores.data());
      SoftmaxColumns(scores.data(), keys, products.Columns(rows));
      result |= products.RowsByChannels(scores.data(), rows, v.Head(b, h, s.head_dim), v.ld, 1.0f, out_rows,
                                        s.channels);
      if (result != 0) status = 100 + result;
    }
  });
  return status;
}

// The gradients of AttendForward, given its output and dout (token layout, channels wide): dq, dk, dv in the
// layout of q, k, v. Work items are (batch, head), since dk and dv sum over every query row; the scores are
// recomputed block by block, and dsoftmax uses rowsum(dout * out) for rowsum(dp * p).
int AttendBackward(const Operand &q, const Operand &k, const Operand &v, const float *out, const float *dout,
                   float *dq, float *dk, float *dv, const AttentionShape &s) {
  if (OneDnnSgemm() == nullptr) return kNoOneDnn;
  const int64_t keys = k.length, block = std::min(QueryBlock(keys), q.length), d = s.head_dim;
  std::atomic<int> status{0};
  ParallelFor(s.batch * s.heads, 1, [&](int, int64_t begin, int64_t end) {
    HeadProducts products(s, keys, block);
    std::vector<float> probs(static_cast<size_t>(keys * products.Columns(block))), dprobs(probs.size());
    std::vector<float> dot(static_cast<size_t>(block));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.heads, h = item % s.heads;
      const float *k_head = k.Head(b, h, d), *v_head = v.Head(b, h, d);
      float *dk_head = dk + (k_head - k.data), *dv_head = dv + (v_head - v.data);
      int result = 0;
      for (int64_t first = 0; first < q.length; first += block) {
        const int64_t rows = std::min(block, q.length - first), cols = products.Columns(rows);
        const float *q_rows = q.Head(b, h, d) + first * q.ld;
        const int64_t token_offset = (b * q.length + first) * s.channels + h * d;
        const float beta = first == 0 ? 0.0f : 1.0f;
        result |= products.KeysByRows(k_head, k.ld, q_rows, q.ld, rows, s.scale, probs.data());
        SoftmaxColumns(probs.data(), keys, cols);
        result |= products.KeysByChannels(probs.data(), rows, dout + token_offset, s.channels, 1.0f, beta, dv_head,
                                          v.ld);
        result |= products.KeysByRows(v_head, v.ld, dout + token_offset, s.channels, rows, 1.0f, dprobs.data());
        for (int64_t r = 0; r < rows; ++r) {
          const float *o = out + token_offset + r * s.channels, *g = dout + token_offset + r * s.channels;
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int64_t c = 0; c < d; ++c) sum += o[c] * g[c];
          dot[r] = sum;
        }
        for (int64_t j = 0; j < keys; ++j) {
          const float *p = probs.data() + j * cols;
          float *dp = dprobs.data() + j * cols;
#pragma omp simd
          for (int64_t r = 0; r < rows; ++r) dp[r] = p[r] * (dp[r] - dot[r]);
        }
        result |= products.RowsByChannels(dprobs.data(), rows, k_head, k.ld, s.scale, dq + (q_rows - q.data), q.ld);
        result |= products.KeysByChannels(dprobs.data(), rows, q_rows, q.ld, s.scale, beta, dk_head, k.ld);
      }
      if (result != 0) status = 100 + result;
    }
  });
  return status;
}

// A matmul: y (M, N) = x (M, K) @ w (N, K)^T in precision P. Inputs: x, w.
template <typename P>
int MatMulKernel(void **params, int64_t **shapes) {
  const int64_t k = shapes[0][1];
  return RowBlockedGemm<P>(InputRows{static_cast<const float *>(params[0]), k}, shapes[0][0], k,
                           static_cast<const float *>(params[1]), shapes[1][0], nullptr,
                           static_cast<float *>(params[2]));
}

// Its gradients. Inputs: dy (M, N), x, w. Outputs: dx (M, K) = dy @ w, dw (N, K) = dy^T @ x.
template <typename P>
int MatMulGradKernel(void **params, int64_t **shapes) {
  return LinearGradients<P>(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                            static_cast<const float *>(params[2]), shapes[0][0], shapes[0][1], shapes[1][1],
                            static_cast<float *>(params[3]), static_cast<float *>(params[4]), nullptr);
}

// A dense layer: y (M, N) = x (M, K) @ w (N, K)^T + bias (N) in precision P, the bias added while a block of y is in
// the cache. Inputs: x, w, bias.
template <typename P>
int LinearKernel(void **params, int64_t **shapes) {
  const int64_t k = shapes[0][1];
  return RowBlockedGemm<P>(InputRows{static_cast<const float *>(params[0]), k}, shapes[0][0], k,
                           static_cast<const float *>(params[1]), shapes[1][0], static_cast<const float *>(params[2]),
                           static_cast<float *>(params[3]));
}

// A dense layer and the residual after it: y = x @ w^T + bias + residual (M, N). Inputs: x, w, bias, residual.
template <typename P>
int LinearResidualKernel(void **params, int64_t **shapes) {
  const int64_t k = shapes[0][1];
  return RowBlockedGemm<P>(InputRows{static_cast<const float *>(params[0]), k}, shapes[0][0], k,
                           static_cast<const float *>(params[1]), shapes[1][0], static_cast<const float *>(params[2]),
                           static_cast<float *>(params[4]), static_cast<const float *>(params[3]));
}

// Its gradients. Inputs: dy (M, N), x, w. Outputs: dx, dw, dbias.
template <typename P>
int LinearGradKernel(void **params, int64_t **shapes) {
  return LinearGradients<P>(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                            static_cast<const float *>(params[2]), shapes[0][0], shapes[0][1], shapes[1][1],
                            static_cast<float *>(params[3]), static_cast<float *>(params[4]),
                            static_cast<float *>(params[5]));
}

// A whole MLP and the residual after it in precision P. Inputs: x (M, C), w1 (H, C), b1 (H), w2 (N, H), b2 (N),
// residual (M, N). Output: y (M, N).
template <typename P>
int MlpKernel(void **params, int64_t **shapes) {
  return MlpRows<P>(static_cast<const float *>(params[0]), shapes[0][0], shapes[0][1],
                    static_cast<const float *>(params[1]), static_cast<const float *>(params[2]), shapes[1][0],
                    static_cast<const float *>(params[3]), static_cast<const float *>(params[4]), shapes[3][0],
                    static_cast<const float *>(params[5]), static_cast<float *>(params[6]));
}

// An MLP in training: y as MlpKernel's without the residual, and h = x @ w1^T (M, H), which its backward takes.
// Inputs: x (M, C), w1 (H, C), b1 (H), w2 (N, H), b2 (N). Outputs: y (M, N), h.
template <typename P>
int MlpTrainingKernel(void **params, int64_t **shapes) {
  return MlpRows<P>(static_cast<const float *>(params[0]), shapes[0][0], shapes[0][1],
                    static_cast<const float *>(params[1]), static_cast<const float *>(params[2]), shapes[1][0],
                    static_cast<const float *>(params[3]), static_cast<const float *>(params[4]), shapes[3][0],
                    nullptr, static_cast<float *>(params[5]), static_cast<float *>(params[6]));
}

// Its gradients. Inputs: dy (M, N), x, h, b1, w1, w2. Outputs: dx, dw1, db1, dw2, db2.
template <typename P>
int MlpGradKernel(void **params, int64_t **shapes) {
  const auto in = [&](int i) { return static_cast<const float *>(params[i]); };
  const auto out = [&](int i) { return static_cast<float *>(params[i]); };
  return MlpGradients<P>(in(0), in(1), in(2), in(3), in(4), in(5), shapes[0][0], shapes[1][1], shapes[2][1],
                         shapes[0][1], out(6), out(7), out(8), out(9), out(10));
}

// A kernel == stride == p convolution of a channels-last grid in precision P: y (B, gh, gw, N) = the patches of
// x (B, H, W, C) by the conv weight w (N, C, p, p), plus bias (N); the patches are gathered a block at a time, in the
// cache. Inputs: x, w, bias.
template <typename P>
int PatchLinearKernel(void **params, int64_t **shapes) {
  PatchGrid grid;
  if (!GetPatchGrid(shapes[0], shapes[1], &grid)) return kBadPatch;
  const int64_t n = shapes[1][0];
  std::vector<float> rows(static_cast<size_t>(n * grid.RowLength()));
  ReorderPatchWeight(static_cast<const float *>(params[1]), n, grid, false, rows.data());
  return RowBlockedGemm<P>(PatchRows{static_cast<const float *>(params[0]), grid}, grid.Rows(), grid.RowLength(),
                           rows.data(), n, static_cast<const float *>(params[2]), static_cast<float *>(params[3]));
}

// Its gradients. Inputs: dy (B, gh, gw, N), x, w. Outputs: dx like x (zero beyond the last whole patch), dw, dbias.
template <typename P>
int PatchLinearGradKernel(void **params, int64_t **shapes) {
  PatchGrid g;
  if (!GetPatchGrid(shapes[1], shapes[2], &g)) return kBadPatch;
  const int64_t rows = g.Rows(), length = g.RowLength(), n = shapes[0][3];
  const float *x = static_cast<const float *>(params[1]);
  // Buffers, left unset since every element is written before it is read: zeroing them was a tenth of the kernel.
  Buffer<float> patches(static_cast<size_t>(rows * length)), dpatches(patches.size());
  ParallelFor(rows, 1, [&](int, int64_t begin, int64_t end) {
    GatherPatches(g, x, begin, end - begin, patches.data() + begin * length);
  });
  Buffer<float> weight_rows(static_cast<size_t>(n * length)), dweight_rows(weight_rows.size());
  ReorderPatchWeight(static_cast<const float *>(params[2]), n, g, false, weight_rows.data());
  const int status =
      LinearGradients<P>(static_cast<const float *>(params[0]), patches.data(), weight_rows.data(), rows, n, length,
                         dpatches.data(), dweight_rows.data(), static_cast<float *>(params[5]));
  ReorderPatchWeight(dweight_rows.data(), n, g, true, static_cast<float *>(params[4]));
  float *dx = static_cast<float *>(params[3]);
  if (g.gh * g.patch != g.height || g.gw * g.patch != g.width) std::fill(dx, dx + NumElements(4, shapes[1]), 0.0f);
  ParallelFor(rows, 1, [&](int, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t py = 0; py < g.patch; ++py) {
        std::memcpy(dx + g.Strip(r, py), dpatches.data() + r * length + py * g.StripLength(),
                    g.StripLength() * sizeof(float));
      }
    }
  });
  return status;
}

// Stochastic depth's per-sample factors from its counter-based generator (mindcv/models/layers/drop.py): sample b
// draws u = (hash(hash(key ^ step) + b * golden) >> 8) / 2^24 and is kept, with factor ``scale``, when u >= the drop
// probability. The same 32-bit integer arithmetic as the tensor operations there, so the masks are identical.
uint64_t Mix32(uint64_t x) {
  constexpr uint64_t kMask = 0xFFFFFFFFu;
  x ^= x >> 16;
  x = (x * 0x7FEB352Du) & kMask;
  x ^= x >> 15;
  x = (x * 0x5BD1E995u) & kMask;
  return x ^ (x >> 16);
}

std::vector<float> DropPathFactors(void **params, int64_t batch) {
  const auto key = static_cast<uint64_t>(*static_cast<const int64_t *>(params[0]));
  const auto step = static_cast<uint64_t>(*static_cast<const int64_t *>(params[1]));
  const auto *probability_and_scale = static_cast<const float *>(params[2]);
  const float drop_probability = probability_and_scale[0], scale = probability_and_scale[1];
  const uint64_t counter = Mix32((key ^ step) & 0xFFFFFFFFu);
  std::vector<float> factors(batch);
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t bits = Mix32((counter + static_cast<uint64_t>(b) * 0x9E3779B9u) & 0xFFFFFFFFu);
    const float uniform = static_cast<float>(bits >> 8) * (1.0f / (1 << 24));
    factors[b] = uniform >= drop_probability ? scale : 0.0f;
  }
  return factors;
}

bool DropPathDtypes(int nparam, const char **dtypes, int first_generator_input) {
  for (int i = 0; i < nparam; ++i) {
    const bool integer = i == first_generator_input || i == first_generator_input + 1;
    if (std::strcmp(dtypes[i], integer ? "int64" : "float32") != 0) return false;
  }
  return true;
}

// out = residual + factor[b] * x[b] over each sample b, or with no residual (its pointer null) out = factor[b] * x[b].
void ScaleSamples(const float *x, const float *residual, const std::vector<float> &factors, int64_t per_sample,
                  float *out) {
  const int64_t batch = static_cast<int64_t>(factors.size());
  if (batch * per_sample == 0) return;  // nothing to scale, and no sample to divide positions by
  ParallelFor(batch * per_sample, kElementsPerChunk, [&](int, int64_t begin, int64_t end) {
    for (int64_t b = begin / per_sample; b * per_sample < end; ++b) {
      const int64_t first = std::max(begin, b * per_sample), last = std::min(end, (b + 1) * per_sample);
      const float factor = factors[b];
      if (residual == nullptr) {
#pragma omp simd
        for (int64_t i = first; i < last; ++i) out[i] = factor * x[i];
      } else {
#pragma omp simd
        for (int64_t i = first; i < last; ++i) out[i] = residual[i] + factor * x[i];
      }
    }
  });
}

}  // namespace

extern "C" {

// y = gelu(x + bias), the exact (erf) GELU x * Phi(x), over the last axis. Inputs: x (..., C), bias (C).
int BiasGeluForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const auto [rows, channels] = AsRows(ndims[0], shapes[0]);
  ParallelFor(rows, kElementsPerChunk / channels, [=](int, int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float *in = x + row * channels;
      float *out = y + row * channels;
      BiasGeluRow(in, bias, channels, out);
    }
  });
  return 0;
}

// Gradients of gelu(x + bias). Inputs: x, bias, dy. Outputs: dx = dy * (Phi(z) + z * phi(z)) with z = x + bias,
// and dbias (C) = dx summed over every axis but the last.
int BiasGeluBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                     void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  const float *dy = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[3]);
  float *dbias = static_cast<float *>(params[4]);
  const auto [rows, channels] = AsRows(ndims[0], shapes[0]);
  std::vector<float> partial(static_cast<size_t>(MaxChunks()) * channels, 0.0f);
  const int chunks = ParallelFor(rows, kElementsPerChunk / channels, [&](int chunk, int64_t begin, int64_t end) {
    float *acc = partial.data() + static_cast<size_t>(chunk) * channels;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t offset = row * channels;
      BiasGeluGradRow(x + offset, bias, dy + offset, channels, dx + offset, acc);
    }
  });
  SumChunks(partial, chunks, channels, dbias);
  return 0;
}

// PEG: y = x + depthwise_conv3x3(x, weight (C,1,3,3), padding 1) + bias, x channels-last (B, H, W, C).
int PegForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
               void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const int64_t *shape = shapes[0];
  const std::vector<float> taps = TapsByChannel(static_cast<const float *>(params[1]), shape[3], false);
  Depthwise3x3Residual(static_cast<const float *>(params[0]), taps.data(), static_cast<const float *>(params[2]),
                       static_cast<float *>(params[3]), shape[0], shape[1], shape[2], shape[3]);
  return 0;
}

// dx = dy + transposed depthwise conv of dy. Inputs: dy (B, H, W, C), weight (C, 1, 3, 3).
int PegBackwardInput(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                     void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const int64_t *shape = shapes[0];
  const std::vector<float> taps = TapsByChannel(static_cast<const float *>(params[1]), shape[3], true);
  Depthwise3x3Residual(static_cast<const float *>(params[0]), taps.data(), nullptr, static_cast<float *>(params[2]),
                       shape[0], shape[1], shape[2], shape[3]);
  return 0;
}

// dweight (C, 1, 3, 3) and dbias (C) from x and dy, both (B, H, W, C).
int PegBackwardWeight(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                      void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dweight = static_cast<float *>(params[2]);
  float *dbias = static_cast<float *>(params[3]);
  const int64_t batch = shapes[0][0], height = shapes[0][1], width = shapes[0][2], channels = shapes[0][3];
  // 9 tap sums and the bias sum per chunk, added up at the end.
  std::vector<float> partial(static_cast<size_t>(MaxChunks()) * 10 * channels, 0.0f);
  const int chunks = ParallelFor(batch * height, 1, [&](int chunk, int64_t begin, int64_t end) {
    float *acc = partial.data() + static_cast<size_t>(chunk) * 10 * channels;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / height, h = row % height;
      for (int64_t w = 0; w < width; ++w) {
        const float *grad = dy + ((b * height + h) * width + w) * channels;
        float *bias_acc = acc + 9 * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) bias_acc[c] += grad[c];
        for (int i = 0; i < 3; ++i) {
          const int64_t y = h + i - 1;
          if (y < 0 || y >= height) continue;
          for (int j = 0; j < 3; ++j) {
            const int64_t xw = w + j - 1;
            if (xw < 0 || xw >= width) continue;
            const float *in = x + ((b * height + y) * width + xw) * channels;
            float *tap_acc = acc + (i * 3 + j) * channels;
#pragma omp simd
            for (int64_t c = 0; c < channels; ++c) tap_acc[c] += grad[c] * in[c];
          }
        }
      }
    }
  });
  std::vector<float> sums(static_cast<size_t>(10 * channels));
  SumChunks(partial, chunks, 10 * channels, sums.data());
  for (int64_t c = 0; c < channels; ++c) {
    for (int k = 0; k < 9; ++k) dweight[c * 9 + k] = sums[k * channels + c];
  }
  std::copy(sums.begin() + 9 * channels, sums.end(), dbias);
  return 0;
}

// LayerNorm over the last axis. Inputs: x (..., C), gamma (C), beta (C), eps (1). Output: y like x.
int LayerNormForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                     void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *y = static_cast<float *>(params[4]);
  const auto [rows, channels] = AsRows(ndims[0], shapes[0]);
  ParallelFor(rows, kElementsPerChunk / channels, [=](int, int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float *in = x + row * channels;
      float *out = y + row * channels;
      const RowMoments moments = Moments(in, channels, eps);
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) out[c] = (in[c] - moments.mean) * moments.rstd * gamma[c] + beta[c];
    }
  });
  return 0;
}

// One row's LayerNorm input gradient into ``dx``, its dgamma and dbeta terms added to ``acc_gamma`` and ``acc_beta``.
// Those sums go in the pass that writes dx, with the accumulators restrict-qualified: summed in the reduction pass,
// or through pointers that may alias the row, they made the kernel 2-4x slower (Xeon, family 6 model 167, at Twins'
// 64-256 channels).
inline void LayerNormGradRow(const float *in, const float *grad, const float *gamma, int64_t channels, float eps,
                             float *dx, float *__restrict acc_gamma, float *__restrict acc_beta) {
  const RowMoments moments = Moments(in, channels, eps);
  float mean_g = 0.0f, mean_g_xhat = 0.0f;
#pragma omp simd reduction(+ : mean_g, mean_g_xhat)
  for (int64_t c = 0; c < channels; ++c) {
    const float g = grad[c] * gamma[c];
    mean_g += g;
    mean_g_xhat += g * (in[c] - moments.mean) * moments.rstd;
  }
  mean_g /= channels;
  mean_g_xhat /= channels;
#pragma omp simd
  for (int64_t c = 0; c < channels; ++c) {
    const float xhat = (in[c] - moments.mean) * moments.rstd;
    acc_gamma[c] += grad[c] * xhat;
    acc_beta[c] += grad[c];
    dx[c] = moments.rstd * (grad[c] * gamma[c] - mean_g - xhat * mean_g_xhat);
  }
}

// LayerNorm gradients. Inputs: x (..., C), gamma (C), dy like x, eps (1). Outputs: dx, dgamma (C), dbeta (C).
// The row statistics are recomputed from x rather than stored by the forward pass.
int LayerNormBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                      void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *dy = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  float *dx = static_cast<float *>(params[4]);
  float *dgamma = static_cast<float *>(params[5]);
  float *dbeta = static_cast<float *>(params[6]);
  const auto [rows, channels] = AsRows(ndims[0], shapes[0]);
  std::vector<float> partial(static_cast<size_t>(MaxChunks()) * 2 * channels, 0.0f);  // dgamma, dbeta per chunk
  const int chunks = ParallelFor(rows, kElementsPerChunk / channels, [&](int chunk, int64_t begin, int64_t end) {
    float *acc_gamma = partial.data() + static_cast<size_t>(chunk) * 2 * channels;
    for (int64_t row = begin; row < end; ++row) {
      LayerNormGradRow(x + row * channels, dy + row * channels, gamma, channels, eps, dx + row * channels, acc_gamma,
                       acc_gamma + channels);
    }
  });
  std::vector<float> sums(static_cast<size_t>(2 * channels));
  SumChunks(partial, chunks, 2 * channels, sums.data());
  std::copy(sums.begin(), sums.begin() + channels, dgamma);
  std::copy(sums.begin() + channels, sums.end(), dbeta);
  return 0;
}

// y = x + bias over the last axis. Inputs: x (..., C), bias (C).
int BiasAddForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                   void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const float *x = static_cast<const float *>(params[0]);
  const float *bias = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[2]);
  const auto [rows, channels] = AsRows(ndims[0], shapes[0]);
  ParallelFor(rows, kElementsPerChunk / channels, [=](int, int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) y[row * channels + c] = x[row * channels + c] + bias[c];
    }
  });
  return 0;
}

// dbias (C) = sum of dy (..., C) over every axis but the last.
int BiasAddBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const auto [rows, channels] = AsRows(ndims[0], shapes[0]);
  ColumnSums(static_cast<const float *>(params[0]), rows, channels, static_cast<float *>(params[1]));
  return 0;
}

// Sum of squares of all inputs (any number of fp32 tensors, e.g. every gradient of a model) into one fp32
// scalar: the global norm for gradient clipping in one pass instead of two kernels per tensor.
int SumOfSquares(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                 void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const int inputs = nparam - 1;
  std::vector<int64_t> starts(inputs + 1, 0);  // where each tensor begins in the concatenation of all inputs
  for (int i = 0; i < inputs; ++i) starts[i + 1] = starts[i] + NumElements(ndims[i], shapes[i]);
  std::vector<double> partial(MaxChunks(), 0.0);
  const int chunks = ParallelFor(starts[inputs], kElementsPerChunk, [&](int chunk, int64_t begin, int64_t end) {
    double total = 0.0;
    for (int i = 0; i < inputs; ++i) {
      const int64_t first = std::max(begin, starts[i]), last = std::min(end, starts[i + 1]);
      const float *data = static_cast<const float *>(params[i]) - starts[i];
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t k = first; k < last; ++k) sum += data[k] * data[k];
      total += sum;
    }
    partial[chunk] = total;
  });
  double total = 0.0;
  for (int t = 0; t < chunks; ++t) total += partial[t];
  *static_cast<float *>(params[nparam - 1]) = static_cast<float>(total);
  return 0;
}

// PyTorch's AdamW step (torch.optim.AdamW's single-tensor form) on any number P of fp32 parameters, in place.
// Inputs: param[P], m[P], v[P], grad[P]; set (P) int32, the row of ``per_set`` each parameter takes; per_set
// (S, 2): 1 - lr * weight_decay, lr / (1 - beta1^t) of each set of parameters sharing lr and weight decay;
// shared (5): beta1, beta2, sqrt(1 - beta2^t), eps, and the factor the gradients are multiplied by first
// (loss-scale unscaling, clipping). Output: a (1,) zero. One pass over all the state with every thread, where a
// kernel per parameter makes hundreds of small passes.
int AdamWUpdate(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                void *extra) {
  const int count = (nparam - 4) / 4;
  const int set_input = 4 * count;
  if (!AllFloat32(set_input, dtypes) || std::strcmp(dtypes[set_input], "int32") != 0 ||
      !AllFloat32(3, dtypes + set_input + 1)) {
    return kWrongDtype;
  }
  const int32_t *set = static_cast<const int32_t *>(params[set_input]);
  const float *per_set = static_cast<const float *>(params[set_input + 1]);
  const float *shared = static_cast<const float *>(params[set_input + 2]);
  const float beta1 = shared[0], beta2 = shared[1], root_correction2 = shared[2], eps = shared[3],
              grad_scale = shared[4];
  std::vector<int64_t> starts(count + 1, 0);  // where each parameter begins in the concatenation of all of them
  for (int k = 0; k < count; ++k) starts[k + 1] = starts[k] + NumElements(ndims[k], shapes[k]);
  ParallelFor(starts[count], kElementsPerChunk, [&](int, int64_t begin, int64_t end) {
    for (int k = 0; k < count; ++k) {
      const int64_t first = std::max(begin, starts[k]) - starts[k], last = std::min(end, starts[k + 1]) - starts[k];
      if (first >= last) continue;
      float *param = static_cast<float *>(params[k]);
      float *m = static_cast<float *>(params[count + k]);
      float *v = static_cast<float *>(params[2 * count + k]);
      const float *grad = static_cast<const float *>(params[3 * count + k]);
      const float decay = per_set[2 * set[k]], step_size = per_set[2 * set[k] + 1];
#pragma omp simd
      for (int64_t i = first; i < last; ++i) {
        const float g = grad[i] * grad_scale;
        const float m_new = m[i] + (g - m[i]) * (1.0f - beta1);
        const float v_new = v[i] * beta2 + g * g * (1.0f - beta2);
        m[i] = m_new;
        v[i] = v_new;
        param[i] = param[i] * decay - step_size * (m_new / (std::sqrt(v_new) / root_correction2 + eps));
      }
    }
  });
  *static_cast<float *>(params[nparam - 1]) = 0.0f;
  return 0;
}

// Multi-head softmax attention, softmax(q k^T / sqrt(head_dim)) v per head, on tokens: the heads are channel
// groups, never split into their own axis. Inputs: q (B, Lq, C), kv (B, Lk, 2C) with k then v, heads (1).
// Output: out (B, Lq, C).
int AttentionForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                     void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const auto *q = static_cast<const float *>(params[0]), *kv = static_cast<const float *>(params[1]);
  const int64_t c = shapes[0][2];
  AttentionShape s;
  if (!GetAttentionShape(shapes[0][0], c, *static_cast<const float *>(params[2]), &s)) return kBadHeads;
  return AttendForward({q, shapes[0][1], c}, {kv, shapes[1][1], 2 * c}, {kv + c, shapes[1][1], 2 * c},
                       static_cast<float *>(params[3]), s);
}

// Inputs: q, kv, heads as AttentionForward's, its output out and dout. Outputs: dq like q, dkv like kv.
int AttentionBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                      void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const auto *q = static_cast<const float *>(params[0]), *kv = static_cast<const float *>(params[1]);
  auto *dkv = static_cast<float *>(params[6]);
  const int64_t c = shapes[0][2];
  AttentionShape s;
  if (!GetAttentionShape(shapes[0][0], c, *static_cast<const float *>(params[2]), &s)) return kBadHeads;
  return AttendBackward({q, shapes[0][1], c}, {kv, shapes[1][1], 2 * c}, {kv + c, shapes[1][1], 2 * c},
                        static_cast<const float *>(params[3]), static_cast<const float *>(params[4]),
                        static_cast<float *>(params[5]), dkv, dkv + c, s);
}

// The same attention with q, k and v packed as qkv (B, L, 3C), heads (1). Output: out (B, L, C).
int PackedAttentionForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const auto *qkv = static_cast<const float *>(params[0]);
  const int64_t length = shapes[0][1], c = shapes[0][2] / 3;
  AttentionShape s;
  if (!GetAttentionShape(shapes[0][0], c, *static_cast<const float *>(params[1]), &s)) return kBadHeads;
  return AttendForward({qkv, length, 3 * c}, {qkv + c, length, 3 * c}, {qkv + 2 * c, length, 3 * c},
                       static_cast<float *>(params[2]), s);
}

// Inputs: qkv, heads, out, dout. Output: dqkv like qkv.
int PackedAttentionBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                            void *stream, void *extra) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  const auto *qkv = static_cast<const float *>(params[0]);
  auto *dqkv = static_cast<float *>(params[4]);
  const int64_t length = shapes[0][1], c = shapes[0][2] / 3;
  AttentionShape s;
  if (!GetAttentionShape(shapes[0][0], c, *static_cast<const float *>(params[1]), &s)) return kBadHeads;
  return AttendBackward({qkv, length, 3 * c}, {qkv + c, length, 3 * c}, {qkv + 2 * c, length, 3 * c},
                        static_cast<const float *>(params[2]), static_cast<const float *>(params[3]), dqkv,
                        dqkv + c, dqkv + 2 * c, s);
}

constexpr int kBadWindow = 6;

// The windows of a channels-last grid (B, H, W, C), H and W whole multiples of ``size``: (B * H/size * W/size,
// size * size, C), window (b, i, j) holding the grid's rows i * size... and columns j * size... in row-major order.
struct WindowGrid {
  int64_t batch, height, width, channels, size;
};

// The grid of ``grid_shape`` (B, H, W, C) split into windows of ``windows_shape`` (windows, size * size, C).
bool GetWindowGrid(const int64_t *grid_shape, const int64_t *windows_shape, WindowGrid *g) {
  const auto size = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(windows_shape[1]))));
  *g = {grid_shape[0], grid_shape[1], grid_shape[2], grid_shape[3], size};
  return size > 0 && size * size == windows_shape[1] && g->height % size == 0 && g->width % size == 0 &&
         windows_shape[2] == g->channels &&
         windows_shape[0] == g->batch * (g->height / size) * (g->width / size);
}

// Copies the grid into its windows (``to_windows``) or the windows back into the grid: a window row of size * C
// floats at a time, where MindSpore's 6-D Transpose moves element by element.
void CopyWindows(const WindowGrid &g, float *grid, float *windows, bool to_windows) {
  const int64_t per_row = g.width / g.size, per_column = g.height / g.size, strip = g.size * g.channels;
  ParallelFor(g.batch * g.height, 1, [&](int, int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / g.height, y = row % g.height;
      const int64_t first_window = (b * per_column + y / g.size) * per_row;
      for (int64_t j = 0; j < per_row; ++j) {
        float *in_grid = grid + (row * g.width + j * g.size) * g.channels;
        float *in_window = windows + ((first_window + j) * g.size + y % g.size) * strip;
        if (to_windows) {
          std::memcpy(in_window, in_grid, strip * sizeof(float));
        } else {
          std::memcpy(in_grid, in_window, strip * sizeof(float));
        }
      }
    }
  });
}

// Input: grid (B, H, W, C). Output: its windows (windows, size * size, C).
int WindowPartition(int nparam, void **params, int *, int64_t **shapes, const char **dtypes, void *, void *) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  WindowGrid g;
  if (!GetWindowGrid(shapes[0], shapes[1], &g)) return kBadWindow;
  CopyWindows(g, static_cast<float *>(params[0]), static_cast<float *>(params[1]), true);
  return 0;
}

// Inputs: windows (windows, size * size, C), a grid (B, H, W, C) whose shape only is used. Output: the grid the
// windows make.
int WindowMerge(int nparam, void **params, int *, int64_t **shapes, const char **dtypes, void *, void *) {
  if (!AllFloat32(nparam, dtypes)) return kWrongDtype;
  WindowGrid g;
  if (!GetWindowGrid(shapes[1], shapes[0], &g)) return kBadWindow;
  CopyWindows(g, static_cast<float *>(params[2]), static_cast<float *>(params[0]), false);
  return 0;
}

// Inputs: branch x (B, ...), residual (B, ...), key and step (int64 scalars), probability_and_scale (2).
// Output: residual + x scaled per sample by stochastic depth's factor.
int DropPathAddForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (!DropPathDtypes(nparam, dtypes, 2)) return kWrongDtype;
  const int64_t batch = shapes[0][0], per_sample = NumElements(ndims[0], shapes[0]) / std::max<int64_t>(batch, 1);
  ScaleSamples(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
               DropPathFactors(params + 2, batch), per_sample, static_cast<float *>(params[5]));
  return 0;
}

// Inputs: dout (B, ...), key, step, probability_and_scale as the forward's. Output: the branch's gradient.
int DropPathAddBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {
  if (!DropPathDtypes(nparam, dtypes, 1)) return kWrongDtype;
  const int64_t batch = shapes[0][0], per_sample = NumElements(ndims[0], shapes[0]) / std::max<int64_t>(batch, 1);
  ScaleSamples(static_cast<const float *>(params[0]), nullptr, DropPathFactors(params + 1, batch), per_sample,
               static_cast<float *>(params[4]));
  return 0;
}

// The shapes of a kernel's tensors as MindSpore gives them.
class GivenShapes {
 public:
  GivenShapes(int, const int *, int64_t **shapes) : shapes_(shapes) {}
  int64_t **get() const { return shapes_; }

 private:
  int64_t **shapes_;
};

// The shapes of a kernel's tensors with each of two or more axes seen as a matrix (its leading axes as rows, by its
// last axis): the dense kernels take activations of any rank, so no reshape comes before or after them, which in
// PYNATIVE mode's compiled backward copies the tensor.
class MatrixShapes {
 public:
  MatrixShapes(int nparam, const int *ndims, int64_t **shapes) : dims_(2 * nparam), views_(shapes, shapes + nparam) {
    for (int i = 0; i < nparam; ++i) {
      if (ndims[i] < 2) continue;
      dims_[2 * i] = NumElements(ndims[i] - 1, shapes[i]);
      dims_[2 * i + 1] = shapes[i][ndims[i] - 1];
      views_[i] = &dims_[2 * i];
    }
  }
  int64_t **get() { return views_.data(); }

 private:
  std::vector<int64_t> dims_;
  std::vector<int64_t *> views_;
};

// The matmul and dense-layer kernels in fp32 and in bf16 (operands rounded to bf16, fp32 sums: AVX-512-BF16 or AMX
// through oneDNN), each an entry point of the name given, with the inputs and outputs of the kernel named, their
// shapes seen through ``view``.
#define DENSE_ENTRY(name, kernel, precision, view)                                                              \
  int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) {     \
    if (!AllFloat32(nparam, dtypes)) return kWrongDtype;                                                       \
    view shapes_seen(nparam, ndims, shapes);                                                                   \
    return kernel<precision>(params, shapes_seen.get());                                                       \
  }
DENSE_ENTRY(MatMulForward, MatMulKernel, Fp32, MatrixShapes)
DENSE_ENTRY(MatMulBackward, MatMulGradKernel, Fp32, MatrixShapes)
DENSE_ENTRY(MatMulBf16Forward, MatMulKernel, Bf16, MatrixShapes)
DENSE_ENTRY(MatMulBf16Backward, MatMulGradKernel, Bf16, MatrixShapes)
DENSE_ENTRY(LinearForward, LinearKernel, Fp32, MatrixShapes)
DENSE_ENTRY(LinearBackward, LinearGradKernel, Fp32, MatrixShapes)
DENSE_ENTRY(LinearBf16Forward, LinearKernel, Bf16, MatrixShapes)
DENSE_ENTRY(LinearBf16Backward, LinearGradKernel, Bf16, MatrixShapes)
DENSE_ENTRY(LinearResidualForward, LinearResidualKernel, Fp32, MatrixShapes)
DENSE_ENTRY(LinearResidualBf16Forward, LinearResidualKernel, Bf16, MatrixShapes)
DENSE_ENTRY(MlpForward, MlpKernel, Fp32, MatrixShapes)
DENSE_ENTRY(MlpBf16Forward, MlpKernel, Bf16, MatrixShapes)
DENSE_ENTRY(MlpTrainingForward, MlpTrainingKernel, Fp32, MatrixShapes)
DENSE_ENTRY(MlpTrainingBf16Forward, MlpTrainingKernel, Bf16, MatrixShapes)
DENSE_ENTRY(MlpBackward, MlpGradKernel, Fp32, MatrixShapes)
DENSE_ENTRY(MlpBf16Backward, MlpGradKernel, Bf16, MatrixShapes)
DENSE_ENTRY(PatchLinearForward, PatchLinearKernel, Fp32, GivenShapes)
DENSE_ENTRY(PatchLinearBackward, PatchLinearGradKernel, Fp32, GivenShapes)
DENSE_ENTRY(PatchLinearBf16Forward, PatchLinearKernel, Bf16, GivenShapes)
DENSE_ENTRY(PatchLinearBf16Backward, PatchLinearGradKernel, Bf16, GivenShapes)
#undef DENSE_ENTRY

}  // extern "C"
