#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <unistd.h>

#include "nodeagent/logs.h"

using namespace berth::nodeagent;

namespace {

Clock::time_point at(const std::string& s) { return *parse_time(s); }

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/berth-logs-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { remove_all(path); }
};

std::optional<std::string> no_param(const std::string&) { return std::nullopt; }

}  // namespace

TEST_CASE("CRI records format and parse") {
  CriRecord r{at("2016-10-06T00:17:09.669794202Z"), "stdout", false, "hello world"};
  CHECK(format_cri_record(r) == "2016-10-06T00:17:09.669794202Z stdout F hello world\n");
  CriRecord p{at("2016-10-06T00:17:09Z"), "stderr", true, "part"};
  CHECK(format_cri_record(p) == "2016-10-06T00:17:09.000000000Z stderr P part\n");

  CriRecord out;
  REQUIRE(parse_cri_record("2016-10-06T00:17:09.669794202Z stdout F hello world", out));
  CHECK(out.stream == "stdout");
  CHECK_FALSE(out.partial);
  CHECK(out.content == "hello world");
  CHECK(out.time == r.time);
  REQUIRE(parse_cri_record("2016-10-06T00:17:10.113242941Z stderr P ", out));
  CHECK(out.partial);
  CHECK(out.content == "");
  CHECK_FALSE(parse_cri_record("not a log line", out));
  CHECK_FALSE(parse_cri_record("2016-10-06T00:17:09Z stdin F x", out));
}

TEST_CASE("the splitter makes full and partial records") {
  CriLineSplitter s("stdout", 8);
  std::vector<CriRecord> out;
  auto t = at("2020-01-01T00:00:00Z");
  s.feed("one\ntw", t, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].content == "one");
  s.feed("o\n", t, out);
  REQUIRE(out.size() == 2);
  CHECK(out[1].content == "two");
  CHECK_FALSE(out[1].partial);
  s.feed("0123456789", t, out);  // longer than 8: cut into a partial record
  REQUIRE(out.size() == 3);
  CHECK(out[2].partial);
  CHECK(out[2].content == "01234567");
  s.finish(t, out);
  REQUIRE(out.size() == 4);
  CHECK(out[3].content == "89");
  CHECK_FALSE(out[3].partial);
}

TEST_CASE("rendering: timestamps, partial lines, limitBytes, since") {
  LogOptions o;
  o.timestamps = true;
  LogRenderer r(o);
  std::string out;
  r.add_line("2016-10-06T00:17:09.669794202Z stdout P hel", out);
  r.add_line("2016-10-06T00:17:09.700000000Z stdout F lo", out);
  r.add_line("2016-10-06T00:17:10Z stderr F bye", out);
  CHECK(out == "2016-10-06T00:17:09.669794202Z hello\n2016-10-06T00:17:10Z bye\n");

  LogOptions lim;
  lim.limit_bytes = 4;
  LogRenderer r2(lim);
  std::string o2;
  CHECK_FALSE(r2.add_line("2016-10-06T00:17:09Z stdout F abcdef", o2));
  CHECK(o2 == "abcd");

  LogOptions since;
  since.since = at("2016-10-06T00:17:10Z");
  LogRenderer r3(since);
  std::string o3;
  r3.add_line("2016-10-06T00:17:09Z stdout F old", o3);
  r3.add_line("2016-10-06T00:17:11Z stdout F new", o3);
  CHECK(o3 == "new\n");
}

TEST_CASE("files: write, tail, read, rotate, follow") {
  TempDir dir;
  std::string path = dir.path + "/0.log";
  {
    CriLogFile f(path);
    for (int i = 1; i <= 5; ++i) f.write({at("2020-01-01T00:00:0" + std::to_string(i) + "Z"), "stdout", false, "line " + std::to_string(i)});
  }
  LogOptions all;
  CHECK(*read_log(path, all) == "line 1\nline 2\nline 3\nline 4\nline 5\n");
  LogOptions tail;
  tail.tail_lines = 2;
  CHECK(*read_log(path, tail) == "line 4\nline 5\n");
  tail.tail_lines = 0;
  CHECK(*read_log(path, tail) == "");
  tail.tail_lines = 100;
  CHECK(*read_log(path, tail) == "line 1\nline 2\nline 3\nline 4\nline 5\n");
  CHECK(tail_offset(path, 1) > 0);

  // rotation keeps max_files files in all
  std::string rpath = dir.path + "/1.log";
  {
    CriLogFile f(rpath, 200, 2);
    for (int i = 0; i < 20; ++i) f.write({Clock::now(), "stdout", false, std::string(40, 'x')});
  }
  std::string listing = run_command({"sh", "-c", "ls " + dir.path + " | grep -c '^1.log'"}).out;
  CHECK(std::atoi(listing.c_str()) == 2);

  // follow: what is there, then what comes, then done once finished
  bool done = false;
  LogOptions follow;
  follow.follow = true;
  follow.tail_lines = 1;
  LogFollower fol(path, follow, [&] { return done; });
  std::string out;
  while (fol.poll(out) == LogFollower::State::More) {
  }
  CHECK(out == "line 5\n");
  {
    CriLogFile f(path);
    f.write({at("2020-01-01T00:00:09Z"), "stderr", false, "late"});
  }
  done = true;
  while (fol.poll(out) == LogFollower::State::More) {
  }
  CHECK(out == "line 5\nlate\n");
  CHECK(fol.poll(out) == LogFollower::State::Done);
}

TEST_CASE("query parameters") {
  std::map<std::string, std::string> q = {{"follow", "true"}, {"tailLines", "10"}, {"timestamps", "1"}, {"previous", "true"}};
  bool previous = false;
  auto o = parse_log_options([&](const std::string& k) -> std::optional<std::string> {
    auto it = q.find(k);
    if (it == q.end()) return std::nullopt;
    return it->second;
  }, &previous);
  REQUIRE(o.ok());
  CHECK(o->follow);
  CHECK(o->timestamps);
  CHECK(*o->tail_lines == 10);
  CHECK(previous);
  q = {{"tailLines", "-1"}};
  CHECK_FALSE(parse_log_options([&](const std::string& k) -> std::optional<std::string> {
    auto it = q.find(k);
    if (it == q.end()) return std::nullopt;
    return it->second;
  }, nullptr).ok());
  CHECK(parse_log_options(no_param, nullptr).ok());
  CHECK(container_log_path("/var/log/pods", "ns", "p", "u", "c", 3) == "/var/log/pods/ns_p_u/c/3.log");
}
