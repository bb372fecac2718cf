// The per-epoch progress display of `nasc train` / `nasc search`.
//
// On a terminal, one line redrawn in place (at most ~10 times a second, so that fast steps
// do not spend their time printing):
//   epoch 3/10 [#########.........] 156/469 loss 0.4123 acc 85.21% 2,310 img/s ETA 0:42
// Elsewhere (a log file, CI), a plain line every `plain_every` steps and at the last step,
// with no '\r' or escape codes, so the output stays readable as a file.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace nas {

struct ProgressOptions {
  bool tty = false;          // redraw one line (true) or print plain lines (false)
  int64_t plain_every = 50;  // plain mode: steps between lines (>= 1)
  int width = 30;            // tty mode: bar width in characters (>= 1)
};

// Seconds on a monotonic clock (std::chrono::steady_clock).
double steady_seconds();

class Progress {
 public:
  // `label` starts every line ("epoch 3/10"). `clock` returns seconds; tests pass a fake
  // one. Timing starts at construction. total_steps < 0, plain_every < 1 or width < 1 is
  // an InternalError.
  Progress(std::ostream& out, std::string label, int64_t total_steps, ProgressOptions options,
           std::function<double()> clock = steady_seconds);

  // After step `step` (1-based) of total_steps: images seen so far this epoch (for the
  // rate), and the running mean loss and accuracy (0..1) the caller keeps.
  void update(int64_t step, int64_t images_so_far, double loss, double accuracy);

  // tty: replaces the bar with `summary` and ends the line; plain: prints `summary` on a
  // line of its own.
  void finish(const std::string& summary);

 private:
  std::string status(int64_t step, int64_t images, double loss, double acc, double now) const;

  std::ostream& out_;
  std::string label_;
  int64_t total_;
  ProgressOptions opt_;
  std::function<double()> clock_;
  double start_;
  double last_draw_ = -1;  // < 0: nothing drawn yet
};

// isatty(stdout): whether progress can be redrawn in place.
bool stdout_is_terminal();

// 2310 -> "2,310"; -1234567 -> "-1,234,567".
std::string format_thousands(int64_t v);
// Seconds as "m:ss" or "h:mm:ss" (rounded; negative or non-finite gives "-:--").
std::string format_duration(double seconds);

}  // namespace nas
