// fuzz_config: the JSON configs of `nasc train` and `nasc search` (-c FILE), both read
// from the same input (a search config holds a train config's keys, so most inputs
// matter to both). What a reader accepts must write back (train_config_to_json,
// search_config_to_json: what the run folder's config.json holds, read again on
// --resume) and read back as the same config.
#include <optional>

#include "runtime/search/search_config.h"
#include "runtime/train/train_config.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

namespace {

void round_trip_train(const nas::TrainConfig& c, const std::string& path) {
  const nlohmann::ordered_json written = nas::train_config_to_json(c);
  std::optional<nas::TrainConfig> back;
  const nlohmann::json plain = nlohmann::json::parse(written.dump());
  if (!accepted([&] { back = nas::parse_train_config(plain, path); }))
    bug("train config round trip",
        "parse_train_config refuses what train_config_to_json wrote: " + written.dump());
  if (*back != c)
    bug("train config round trip", "the config read back differs: " + written.dump() + " vs " +
                                       nas::train_config_to_json(*back).dump());
}

void round_trip_search(const nas::SearchConfig& c, const std::string& path) {
  const nlohmann::ordered_json written = nas::search_config_to_json(c);
  std::optional<nas::SearchConfig> back;
  const nlohmann::json plain = nlohmann::json::parse(written.dump());
  if (!accepted([&] { back = nas::parse_search_config(plain, path); }))
    bug("search config round trip",
        "parse_search_config refuses what search_config_to_json wrote: " + written.dump());
  // SearchConfig has no operator==; its complete JSON form stands for it.
  const std::string again = nas::search_config_to_json(*back).dump();
  if (again != written.dump())
    bug("search config round trip",
        "the config read back differs: " + written.dump() + " vs " + again);
}

}  // namespace

bool fuzz_config(const std::string& input) {
  const std::string path = write_scratch("config.json", input);
  bool any = false;
  std::optional<nas::TrainConfig> train;
  if (accepted([&] { train = nas::load_train_config(path); })) {
    round_trip_train(*train, path);
    any = true;
  }
  std::optional<nas::SearchConfig> search;
  if (accepted([&] { search = nas::load_search_config(path); })) {
    round_trip_search(*search, path);
    any = true;
  }
  return any;
}

}  // namespace nas_fuzz
