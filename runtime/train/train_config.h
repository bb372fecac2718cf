// The JSON config of `nasc train` (-c cfg.json): data, optimizer, epochs, network
// parameters. Read strictly, like the optimizer section it embeds: an unknown key or a
// wrong type is an error naming the key path, with a did-you-mean for a near miss,
// because a misspelt key silently falling back to its default wastes a whole run.
//
// Missing keys take the defaults of default_train_config() (documented in docs/train.md),
// and train_config_to_json writes the resolved config back in full, so a run folder's
// config.json says exactly what ran and can be fed to -c again.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "runtime/data/augment.h"
#include "runtime/optim/optim_config.h"

namespace nas {

struct DataConfig {
  std::string name = "fashion-mnist";  // fashion-mnist | cifar10 | npy | images | synthetic
  // Folder of the data files. "" = the default, /usr/share/datasets/fashion-mnist, for
  // Fashion-MNIST (parse_train_config fills it in); required for cifar10, npy and images;
  // not used (and rejected in JSON) for synthetic.
  std::string dir;
  int64_t batch_size = 128;  // images per optimizer step
  // Images per forward/backward; the gradients of batch_size / mini_batch of them are
  // averaged (runtime/optim/grad_accum.h). 0 = batch_size; parse_train_config resolves it.
  int64_t mini_batch = 0;
  int64_t eval_batch_size = 256;
  // Share of the training set used for training, per class (split_stratified); the rest
  // is the validation split that search uses. 1 = all of it, no validation split.
  double train_portion = 1.0;
  // 0 = all; else only a stratified subset of this many samples (quick runs and tests).
  int64_t limit_train = 0, limit_test = 0;
  // Random augmentation: JSON keys "crop_padding", "hflip", "cutout" under "augment".
  // mean/std are not config keys: with `normalize` the command fills them from the
  // training data (channel_stats).
  Augment augment;
  bool normalize = true;  // JSON: "augment": {"normalize": true}
  // Only for name "synthetic" (make_synthetic): training samples, classes, per-sample
  // C,H,W. Unset (0, empty), the classes are the network's logits and the shape its
  // input: resolve_synthetic_data fills them in before a run writes its config.json.
  int64_t synthetic_samples = 2048, synthetic_classes = 0;
  std::vector<int64_t> synthetic_shape;

  // mini_batch with 0 resolved to batch_size.
  int64_t effective_mini_batch() const { return mini_batch > 0 ? mini_batch : batch_size; }
};

struct TrainConfig {
  int64_t epochs = 10;
  uint64_t seed = 0;
  int threads = 0;  // 0 = all cores
  DataConfig data;
  OptimizerConfig optimizer;  // the default_train_config() one when the section is absent
  // Network parameters, like --set NAME=VALUE: "network": {"C": 16, "layers": 5} gives
  // ("C", "16"), ("layers", "5"). Values are rendered as .nas literals: integers as is,
  // floats always with a '.' (2.0, 1.0e-05), strings quoted, true/false, lists [1, 2].
  // Sorted by name (JSON objects are unordered).
  std::vector<std::pair<std::string, std::string>> network;
  // The evaluation recipe (docs/train.md). Label smoothing eps of the training loss, in
  // [0, 1): targets (1 - eps) * onehot + eps / classes (the test loss stays unsmoothed).
  double label_smoothing = 0;
  // The drop probability in [0, 1) that the network's drop_path(x) nodes without their own p
  // reach at the end of training: epoch e of E trains with drop_path_prob * e / E (DARTS).
  double drop_path_prob = 0;
  // Whether each epoch ends with a pass over the test split (nasc train's default). false
  // reads the test split once, after the last epoch, and each epoch reports the
  // validation split instead (when train_portion < 1 leaves one): the retrain of `nasc
  // search --retrain` runs so, since a test set that is read along the way is no longer
  // held out.
  bool test_every_epoch = true;
  int64_t log_every = 50;        // steps between plain progress lines (stdout not a terminal)
  int64_t checkpoint_every = 1;  // epochs between checkpoints (the last epoch always saves)
  // Where the config came from (parse_train_config's path_for_messages), for errors found
  // once the network is known. Not a setting: neither compared nor written.
  std::string source;
};

bool operator==(const DataConfig& a, const DataConfig& b);
bool operator==(const TrainConfig& a, const TrainConfig& b);
inline bool operator!=(const TrainConfig& a, const TrainConfig& b) {
  return !(a == b);
}

// Sensible defaults for Fashion-MNIST: 10 epochs of batch 128, SGD lr 0.05, Nesterov
// momentum 0.9, weight decay 3e-4, gradient clipping at 5, cosine schedule per epoch to 0;
// no random augmentation, normalization on. data.dir is filled in.
TrainConfig default_train_config();

// Throws ConfigError "<path_for_messages>: data.batch_sze: unknown key (did you mean
// batch_size?)" (no "<path>: " prefix when path_for_messages is empty). Every key is
// optional; an absent one keeps its default_train_config() value.
TrainConfig parse_train_config(const nlohmann::json& j, const std::string& path_for_messages);

// For synthetic data: unset synthetic_shape / synthetic_classes become the network's
// input shape and logit count; set ones must agree with the network. Throws ConfigError
// at `source`: data.synthetic_shape naming both shapes, data.synthetic_classes when there
// are more classes than logits, data.synthetic_samples beyond 2 GiB of images; UserError
// for a network whose input is not an image [C, H, W]. Other data sets are left alone.
void resolve_synthetic_data(DataConfig& d, const std::vector<int64_t>& input_shape, int64_t classes,
                            const std::string& source);

// Reads `file` and parses it; errors name the file: a JsonSyntaxError at line:column for
// text that is not JSON (or gives a key twice), a ConfigError at the key path otherwise.
TrainConfig load_train_config(const std::string& file);

// Every key, defaults filled in (mini_batch and data.dir resolved, synthetic_* only for
// synthetic data); parse_train_config(train_config_to_json(c)) == c for any parsed config.
nlohmann::ordered_json train_config_to_json(const TrainConfig& c);

// Renders a JSON scalar (or list of them) as a .nas literal for --set, and back. Throws
// ConfigError at key path `path` for null, objects, non-finite numbers, and strings
// the --set parser cannot carry (quotes, backslashes, control characters; in lists also
// ',', '[' and ']').
std::string json_to_nas_literal(const nlohmann::json& v, const std::string& path);
nlohmann::json nas_literal_to_json(const std::string& literal);

}  // namespace nas
