#include "runtime/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "runtime/dist/collectives.h"
#include "support/errors.h"

namespace nas {

namespace {

constexpr double kMinRedrawSeconds = 0.1;  // ~10 redraws per second at most

}  // namespace

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

bool stdout_is_terminal() {
  // Under mpirun, Open MPI hands every rank a pseudo-terminal whatever its own output is
  // (a log file, a CI pipe): plain lines there, never carriage returns and escapes.
  return ::isatty(STDOUT_FILENO) == 1 && !detect_launch().under_mpi;
}

std::string format_thousands(int64_t v) {
  // Through uint64 so that INT64_MIN has a magnitude.
  uint64_t mag = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits = std::to_string(mag), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e9) return "-:--";
  auto s = static_cast<int64_t>(std::llround(seconds));
  char b[48];
  if (s >= 3600)
    std::snprintf(b, sizeof b, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(b, sizeof b, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return b;
}

Progress::Progress(std::ostream& out, std::string label, int64_t total_steps,
                   ProgressOptions options, std::function<double()> clock)
    : out_(out),
      label_(std::move(label)),
      total_(total_steps),
      opt_(options),
      clock_(std::move(clock)) {
  // The trainers pass counts from checked configs (log_every >= 1).
  NAS_CHECK(total_steps >= 0,
            "Progress: total_steps must be >= 0, got " + std::to_string(total_steps));
  NAS_CHECK(opt_.plain_every >= 1,
            "Progress: plain_every must be >= 1, got " + std::to_string(opt_.plain_every));
  NAS_CHECK(opt_.width >= 1, "Progress: width must be >= 1, got " + std::to_string(opt_.width));
  if (!clock_) clock_ = steady_seconds;
  start_ = clock_();
}

// "loss 0.4123 acc 85.21% 2,310 img/s ETA 0:42"; the rate and ETA need elapsed time.
std::string Progress::status(int64_t step, int64_t images, double loss, double acc,
                             double now) const {
  char b[96];
  std::snprintf(b, sizeof b, "loss %.4f acc %.2f%%", loss, 100.0 * acc);
  std::string s = b;
  double elapsed = now - start_;
  if (elapsed > 0 && step > 0) {
    s += " " + format_thousands(static_cast<int64_t>(std::llround(images / elapsed))) + " img/s";
    s += " ETA " + format_duration(elapsed / static_cast<double>(step) *
                                   static_cast<double>(std::max<int64_t>(total_ - step, 0)));
  } else {
    s += " - img/s ETA -:--";
  }
  return s;
}

void Progress::update(int64_t step, int64_t images_so_far, double loss, double accuracy) {
  const bool last = step >= total_;
  double now = clock_();
  const std::string steps_w = std::to_string(total_);
  if (opt_.tty) {
    if (!last && last_draw_ >= 0 && now - last_draw_ < kMinRedrawSeconds) return;
    last_draw_ = now;
    int64_t clamped = std::clamp<int64_t>(step, 0, total_);
    int filled = total_ > 0 ? static_cast<int>(opt_.width * clamped / total_) : opt_.width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(opt_.width - filled), '.');
    std::string count = std::to_string(step);
    // Right-aligned step count, so the line does not jitter as digits are added.
    if (count.size() < steps_w.size()) count.insert(0, steps_w.size() - count.size(), ' ');
    out_ << '\r' << label_ << " [" << bar << "] " << count << '/' << steps_w << ' '
         << status(step, images_so_far, loss, accuracy, now) << "\x1b[K" << std::flush;
  } else {
    if (!last && step % opt_.plain_every != 0) return;
    last_draw_ = now;
    out_ << label_ << " step " << step << '/' << steps_w << ' '
         << status(step, images_so_far, loss, accuracy, now) << '\n'
         << std::flush;
  }
}

void Progress::finish(const std::string& summary) {
  if (opt_.tty)
    out_ << '\r' << summary << "\x1b[K\n" << std::flush;
  else
    out_ << summary << '\n' << std::flush;
}

}  // namespace nas
