// Tests of common/datasets/imagenet: the embedded ImageNet-1k table (1000 unique wnids in sorted-wnid order, equal to
// common/datasets/data/imagenet_classes.tsv) and class lookups by index, wnid and name, with helpful errors.
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "common/datasets/imagenet.h"
#include "tests/catch_compat.h"
#include "tests/expect_error.h"
#include "tests/test_support.h"

using moh::test::contains;
using moh::test::error_message;

TEST_CASE("the embedded table has 1000 classes with unique wnids in ImageFolder order", "[imagenet]") {
  const auto& t = moh::imagenet_classes();
  REQUIRE(t.size() == 1000);
  std::set<std::string> wnids;
  for (size_t i = 0; i < t.size(); ++i) {
    INFO(i);
    CHECK(t[i].index == static_cast<int>(i));
    CHECK(t[i].wnid.size() == 9);
    CHECK(t[i].wnid[0] == 'n');
    CHECK(!t[i].name.empty());
    CHECK(t[i].name == t[i].lemmas.front());
    if (i > 0) CHECK(t[i - 1].wnid < t[i].wnid);  // ImageFolder sorts the class folders (wnids) -> the index order
    wnids.insert(t[i].wnid);
  }
  CHECK(wnids.size() == 1000);
  // Well-known anchors of ImageNet-1k.
  CHECK(t[0].wnid == "n01440764");
  CHECK(t[0].name == "tench");
  CHECK(t[207].wnid == "n02099601");
  CHECK(t[207].name == "golden retriever");
  CHECK(t[999].wnid == "n15075141");
  CHECK(t[999].name == "toilet tissue");
}

TEST_CASE("the embedded table equals common/datasets/data/imagenet_classes.tsv", "[imagenet]") {
  std::ifstream in(std::string(MOH_DATA_DIR) + "/imagenet_classes.tsv");
  if (!MOH_NEED(in.good(), std::string(MOH_DATA_DIR) + "/imagenet_classes.tsv not found")) return;
  const auto& t = moh::imagenet_classes();
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string idx, wnid, lemmas;
    std::getline(fields, idx, '\t');
    std::getline(fields, wnid, '\t');
    std::getline(fields, lemmas);
    REQUIRE(n < t.size());
    INFO(line);
    CHECK(std::stoi(idx) == t[n].index);
    CHECK(wnid == t[n].wnid);
    CHECK(lemmas.rfind(t[n].name, 0) == 0);
    ++n;
  }
  CHECK(n == t.size());
}

TEST_CASE("classes resolve by index, wnid and name", "[imagenet]") {
  CHECK(moh::resolve_imagenet_class("207") == 207);
  CHECK(moh::resolve_imagenet_class(" 0 ") == 0);
  CHECK(moh::resolve_imagenet_class("999") == 999);
  CHECK(moh::resolve_imagenet_class("n02099601") == 207);
  CHECK(moh::resolve_imagenet_class("golden retriever") == 207);
  CHECK(moh::resolve_imagenet_class("Golden Retriever") == 207);
  CHECK(moh::resolve_imagenet_class("golden_retriever") == 207);
  CHECK(moh::resolve_imagenet_class("tabby cat") == 281);  // a later lemma of "tabby, tabby cat"
  CHECK(moh::resolve_imagenet_class("Tinca tinca") == 0);
  CHECK(moh::resolve_imagenet_class("man-eater") == 2);
  // Case decides between the corgi ("Cardigan, Cardigan Welsh corgi") and the sweater ("cardigan").
  CHECK(moh::resolve_imagenet_class("Cardigan") == 264);
  CHECK(moh::resolve_imagenet_class("cardigan") == 474);
  // A lemma shared by two classes goes to the class it names first ("missile" vs "projectile, missile").
  CHECK(moh::resolve_imagenet_class("missile") == 657);
  CHECK(moh::imagenet_label(207) == "207 golden retriever (n02099601)");
}

TEST_CASE("unknown or ambiguous classes raise helpful errors", "[imagenet]") {
  const std::string typo = error_message([] { moh::resolve_imagenet_class("golden retreiver"); });
  CHECK(contains(typo, "golden retreiver"));
  CHECK(contains(typo, "golden retriever"));  // suggested
  const std::string crane = error_message([] { moh::resolve_imagenet_class("crane"); });
  CHECK(contains(crane, "ambiguous"));
  CHECK(contains(crane, "134"));  // the bird
  CHECK(contains(crane, "517"));  // the machine
  CHECK(contains(error_message([] { moh::resolve_imagenet_class("1000"); }), "out of range"));
  CHECK(contains(error_message([] { moh::resolve_imagenet_class("99999999999999999999"); }), "out of range"));
  CHECK(contains(error_message([] { moh::resolve_imagenet_class("n99999999"); }), "n99999999"));
  CHECK(contains(error_message([] { moh::resolve_imagenet_class("  "); }), "empty"));
  CHECK_THROWS_AS(moh::imagenet_label(-1), moh::Error);
}
