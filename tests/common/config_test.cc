#include "common/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gt {
namespace {

using nlohmann::json;

const std::string kData = std::string(GREENTRAIN_SOURCE_DIR) + "/data/eia930-2022";

json MinimalConfig() {
  return json::parse(R"({
    "sites": [
      {"name": "a", "gpus": 8, "carbon": {"file": "CISO_2022.csv", "column": "avg_CI"},
       "solar_mw": 1, "solar": {"file": "CISO_2022.csv", "column": "SUN"},
       "battery": {"capacity_mwh": 1, "charge_mw": 0.5, "discharge_mw": 0.5}},
      {"name": "b", "gpus": 8, "carbon": {"file": "ERCO_2022.csv"}}
    ],
    "links": [{"from": "a", "to": "b", "bandwidth_gbps": 1, "latency_ms": 10}],
    "job": {"steps": 100, "start": "2022-06-01T00:00:00Z", "deadline_hours": 24}
  })");
}

// Parses `j` and expects an error whose message contains every string of `needles`.
void ExpectError(const json& j, std::initializer_list<std::string> needles) {
  auto c = ParseConfig(j.dump(), kData);
  ASSERT_FALSE(c.ok()) << j.dump();
  for (const auto& n : needles)
    EXPECT_NE(c.status().message().find(n), std::string::npos)
        << "message '" << c.status().message() << "' lacks '" << n << "'";
}

TEST(Config, DuplicateKeysAreRefusedWithTheirPath) {
  std::string text = MinimalConfig().dump();
  // A second "capacity_mwh" in sites[0].battery (a JSON object cannot hold it twice).
  const std::string key = "\"capacity_mwh\":1";
  ASSERT_NE(text.find(key), std::string::npos);
  text.replace(text.find(key), key.size(), key + ",\"capacity_mwh\":5");
  auto c = ParseConfig(text, kData);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("sites[0].battery: key 'capacity_mwh' appears twice"), std::string::npos)
      << c.status().message();
  // At the top level too.
  auto top = ParseConfig(R"({"name": "a", "name": "b"})", kData);
  ASSERT_FALSE(top.ok());
  EXPECT_NE(top.status().message().find("key 'name' appears twice"), std::string::npos) << top.status().message();
}

TEST(Config, StepCountsAreWholeNumbers) {
  json j = MinimalConfig();
  j["job"]["steps"] = 1.5;
  ExpectError(j, {"job.steps", "whole number", "1.5"});
  j["job"]["steps"] = 1e4;  // whole, written as a float
  auto c = ParseConfig(j.dump(), kData);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->job.steps, 10000);
}

TEST(Config, APauseKeepsItsGpusUnlessTheJobGivesThemBack) {
  auto held = ParseConfig(MinimalConfig().dump(), kData);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_FALSE(held->job.pause_releases_gpus);
  json j = MinimalConfig();
  j["job"]["pause_releases_gpus"] = true;
  auto released = ParseConfig(j.dump(), kData);
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_TRUE(released->job.pause_releases_gpus);
  j["job"]["pause_releases_gpus"] = "yes";
  ExpectError(j, {"job.pause_releases_gpus", "true or false"});
}

TEST(Config, BundledDefaultLoads) {
  auto c = LoadConfig(DefaultConfigPath());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sites.size(), 3u);
  EXPECT_EQ(c->SiteIndex("texas"), 1);
  EXPECT_NE(c->FindLink("midwest", "texas"), nullptr);
  EXPECT_GT(c->sim_end, c->job.start);
  EXPECT_EQ(c->runtime.live_model.hidden, 128);
}

TEST(Config, MinimalParsesWithDefaults) {
  auto c = ParseConfig(MinimalConfig().dump(), kData);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->interval_seconds, 3600);
  EXPECT_EQ(c->sites[0].carbon.file, kData + "/CISO_2022.csv");
  EXPECT_DOUBLE_EQ(c->sites[0].pue, 1.2);
  EXPECT_EQ(c->runtime.live_model.layers, c->model.layers);
  EXPECT_EQ(c->job.start, 1654041600);
}

TEST(Config, UnknownKeyNamesPathAndSuggests) {
  json j = MinimalConfig();
  j["sites"][0]["battery"]["capacity_mw"] = 2;
  ExpectError(j, {"sites[0].battery.capacity_mw", "unknown key", "did you mean 'capacity_mwh'"});
  j = MinimalConfig();
  j["colour"] = 1;
  ExpectError(j, {"colour", "unknown key"});
}

TEST(Config, WrongType) {
  json j = MinimalConfig();
  j["sites"][1]["gpus"] = "eight";
  ExpectError(j, {"sites[1].gpus", "must be a number"});
  j = MinimalConfig();
  j["sites"][1]["gpus"] = 2.5;
  ExpectError(j, {"sites[1].gpus", "whole number"});
}

TEST(Config, NegativeCapacity) {
  json j = MinimalConfig();
  j["sites"][0]["battery"]["capacity_mwh"] = -1;
  ExpectError(j, {"sites[0].battery.capacity_mwh", "out of range"});
  j = MinimalConfig();
  j["sites"][0]["solar_mw"] = -0.5;
  ExpectError(j, {"sites[0].solar_mw"});
}

TEST(Config, MissingTraceFile) {
  json j = MinimalConfig();
  j["sites"][1]["carbon"]["file"] = "nope.csv";
  ExpectError(j, {"sites[1].carbon.file", "nope.csv", "does not exist"});
}

TEST(Config, LinkToUndefinedSite) {
  json j = MinimalConfig();
  j["links"][0]["to"] = "mars";
  ExpectError(j, {"links[0].to", "'mars'", "not a defined site"});
}

TEST(Config, SiteNamesMustNameADirectoryAndCheckpointStorageIsKnown) {
  for (const char* bad : {"b/x", "..", "a\\b"}) {
    json j = MinimalConfig();
    j["sites"][1]["name"] = bad;
    ExpectError(j, {"sites[1].name", "cannot name a directory"});
  }
  json j = MinimalConfig();
  j["runtime"]["checkpoint_storage"] = "nfs";
  ExpectError(j, {"runtime.checkpoint_storage", "site"});
  j["runtime"]["checkpoint_storage"] = "site";
  j["sites"][0]["carbon"]["clip"] = "yes";
  ExpectError(j, {"sites[0].carbon.clip", "true or false"});
  j["sites"][0]["carbon"]["clip"] = true;
  auto c = ParseConfig(j.dump(), kData);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->runtime.checkpoint_storage, "site");
  EXPECT_TRUE(c->sites[0].carbon.clip);
  EXPECT_FALSE(c->sites[1].carbon.clip);
  EXPECT_EQ(ParseConfig(MinimalConfig().dump(), kData)->runtime.checkpoint_storage, "shared");
}

// Who sets a live job's pace: the box (default) or the plan; nothing else.
TEST(Config, TheLivePaceIsTheBoxsOrThePlans) {
  EXPECT_EQ(ParseConfig(MinimalConfig().dump(), kData)->runtime.pace, "box");
  json j = MinimalConfig();
  j["runtime"]["pace"] = "fast";
  ExpectError(j, {"runtime.pace", "plan"});
  j["runtime"]["pace"] = "plan";
  auto c = ParseConfig(j.dump(), kData);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->runtime.pace, "plan");
}

TEST(Config, OtherMistakes) {
  json j = MinimalConfig();
  j["sites"][1]["name"] = "a";
  ExpectError(j, {"duplicate site name"});
  j = MinimalConfig();
  j.erase("job");
  ExpectError(j, {"job", "required"});
  j = MinimalConfig();
  j["sites"][0].erase("carbon");
  ExpectError(j, {"sites[0].carbon", "required"});
  j = MinimalConfig();
  j["sites"][0].erase("solar");
  ExpectError(j, {"sites[0].solar", "needs a solar profile"});
  j = MinimalConfig();
  j["job"]["start"] = "June 1st";
  ExpectError(j, {"job.start", "bad timestamp"});
  j = MinimalConfig();
  j["policy"] = {{"name", "fastest"}};
  ExpectError(j, {"policy.name", "not one of"});
  j = MinimalConfig();
  j["sites"][0]["gpu"] = {{"idle_w", 500}, {"busy_w", 400}};
  ExpectError(j, {"sites[0].gpu.busy_w", "below idle_w"});
  j = MinimalConfig();
  j["model"] = {{"hidden", 100}, {"heads", 3}};
  ExpectError(j, {"model.heads", "divisible"});
  EXPECT_FALSE(ParseConfig("{not json", kData).ok());
  EXPECT_EQ(LoadConfig("/nonexistent/x.json").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace gt
