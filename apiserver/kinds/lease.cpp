// coordination.k8s.io/v1 Lease: pkg/registry/coordination/lease/strategy.go,
// pkg/apis/coordination/validation, printLease.
#include "api/validation.h"
#include "apiserver/kinds/other_kinds.h"

namespace berth::apiserver {
namespace {

class LeaseStrategy : public Strategy {
 public:
  LeaseStrategy() {
    info_.group = "coordination.k8s.io";
    info_.kind = "Lease";
    info_.plural = "leases";
    info_.singular = "lease";
    info_.namespaced = true;
    info_.versions = {"v1"};
    info_.storage_version = "v1";
    info_.storage_prefix = "/registry/leases";
    info_.allow_create_on_update = true;
    info_.allow_unconditional_update = false;  // updates must name the resourceVersion they replace
  }

  const KindInfo& info() const override { return info_; }

  // CoordinatedLeaderElection is off by default in 1.32: its fields are dropped unless in use.
  void prepare_for_create(json& obj) const override {
    if (obj.contains("spec") && obj["spec"].is_object()) {
      obj["spec"].erase("strategy");
      obj["spec"].erase("preferredHolder");
    }
  }
  void prepare_for_update(json& obj, const json& old) const override {
    if (!obj.contains("spec") || !obj["spec"].is_object()) return;
    if (at(old, {"spec", "strategy"}).is_null()) obj["spec"].erase("strategy");
    if (at(old, {"spec", "preferredHolder"}).is_null()) obj["spec"].erase("preferredHolder");
  }

  void apply_defaults(json& obj) const override {
    if (!obj["spec"].is_object()) obj["spec"] = json::object();
  }

  // ValidateLeaseSpec.
  void validate(const json& obj, std::vector<api::Cause>& errors) const override {
    const json& spec = at(obj, {"spec"});
    const json& duration = at(spec, {"leaseDurationSeconds"});
    if (duration.is_number() && duration.get<double>() <= 0)
      errors.push_back(api::field_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"));
    const json& transitions = at(spec, {"leaseTransitions"});
    if (transitions.is_number() && transitions.get<double>() < 0)
      errors.push_back(api::field_invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0"));
    const json& strategy = at(spec, {"strategy"});
    if (strategy.is_string() && strategy.get<std::string>() != "OldestEmulationVersion")
      errors.push_back(api::field_not_supported("spec.strategy", strategy, {"OldestEmulationVersion"}));
    const json& preferred = at(spec, {"preferredHolder"});
    if (preferred.is_string() && !preferred.get<std::string>().empty() &&
        (!strategy.is_string() || strategy.get<std::string>().empty()))
      errors.push_back(api::field_forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined"));
  }

  std::vector<Column> columns() const override {
    auto def = Strategy::columns();  // Name, Age
    return {def[0],
            {"Holder", "string", "", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", 0},
            def[1]};
  }

  json cells(const json& obj) const override {
    const json& holder = at(obj, {"spec", "holderIdentity"});
    return json::array({at(obj, {"metadata", "name"}), holder.is_string() ? holder : json(""), age(obj)});
  }

 private:
  KindInfo info_;
};

}  // namespace

std::unique_ptr<Strategy> make_lease_strategy() { return std::make_unique<LeaseStrategy>(); }

}  // namespace berth::apiserver
