// Numbers for people (support/format.h): the CLI's summaries and the runtime's progress
// lines write counts the same way, so that a search's epoch lines and its final line agree.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>

#include "support/format.h"

namespace nas {

TEST_CASE("with_commas groups thousands", "[format]") {
  CHECK(with_commas(0) == "0");
  CHECK(with_commas(999) == "999");
  CHECK(with_commas(1000) == "1,000");
  CHECK(with_commas(268160) == "268,160");
  CHECK(with_commas(1234567) == "1,234,567");
  CHECK(with_commas(-1234) == "-1,234");
  CHECK(with_commas(std::numeric_limits<int64_t>::min()) == "-9,223,372,036,854,775,808");
}

TEST_CASE("human_count keeps three significant digits", "[format]") {
  CHECK(human_count(0) == "0");
  CHECK(human_count(999) == "999");
  CHECK(human_count(999.4) == "999");
  CHECK(human_count(1000) == "1.00K");
  CHECK(human_count(1234) == "1.23K");
  CHECK(human_count(56528) == "56.5K");
  // The search's epoch line once said "0.3M MACs" and its final line "268.2K MACs" for
  // the same genotype.
  CHECK(human_count(268160) == "268K");
  CHECK(human_count(1624224) == "1.62M");
  CHECK(human_count(300255744) == "300M");
  CHECK(human_count(2.5e9) == "2.50G");
  CHECK(human_count(7.1e12) == "7.10T");
  CHECK(human_count(-56528) == "-56.5K");
}

TEST_CASE("human_count moves to the next digit or suffix when rounding carries", "[format]") {
  CHECK(human_count(999.6) == "1.00K");
  CHECK(human_count(9996) == "10.0K");
  CHECK(human_count(99960) == "100K");
  CHECK(human_count(999600) == "1.00M");
  CHECK(human_count(999.6e6) == "1.00G");
}

}  // namespace nas
