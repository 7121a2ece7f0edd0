"""`imagesync deploy-steps`: the deployment steps serverless.yml cannot declare, through the official SDK.

1. Async retries of each function (scf UpdateFunctionEventInvokeConfig, deploy/function-event-invoke-config.json):
   completion_hook is invoked asynchronously by status_sweep, the sweep by its timer, copy_request by EventBridge.
2. completion_hook's dead letter (scf UpdateFunctionConfiguration DeadLetterConfig,
   deploy/completion-hook-dead-letter.json), with --dead-letter only: SCF's dead letter is a CMQ queue, a beta
   that needs a support ticket (docs/deploy.md).
3. The EventBridge rule routing CloudAudit CreateImage calls to copy_request (eb CreateRule + CreateTarget on the
   cloud-service bus, deploy/eventbridge-pattern.json and eventbridge-target.json), unless --no-create-image-rule.
4. With --link eventbridge: the completions bus, its rule and completion_hook as the target (eb CreateEventBus,
   CreateRule, CreateTarget; deploy/eventbridge-completions-*.json); prints the bus id for IMAGESYNC_EVENT_BUS_ID.

Every step is idempotent: a rule or target or bus that already exists (same name, same function) is reused, so the
tool can be run again after a change. Against IMAGESYNC_TENCENT_ENDPOINT when set (the emulator), else the real
cloud, with the credentials of imagesync's other commands. `--dry-run` prints the calls without making them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from .domain.errors import CloudError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FUNCTIONS = ("copy_request", "status_sweep", "completion_hook")
CREATE_IMAGE_RULE = "imagesync-create-image"
COMPLETIONS_BUS = "imagesync-completions"
COMPLETIONS_RULE = "imagesync-completions"


class Caller(Protocol):
    """What the steps need of imagesync.adapters.tencent.TencentCloud."""

    def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> dict[str, Any]: ...


class DryRun:
    """Records the calls and answers each with made-up ids (so later steps can be shown)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> dict[str, Any]:
        self.calls.append({"product": product, "region": region, "action": action, "params": params})
        return {
            "EventBuses": [{"EventBusName": "default", "EventBusId": "eb-default-dryrun"}],
            "Rules": [],
            "Targets": [],
            "RuleId": "rule-dryrun",
            "TargetId": "target-dryrun",
            "EventBusId": "eb-dryrun",
        }


def load(name: str, deploy: Path = DEPLOY, **placeholders: str) -> dict[str, Any]:
    """deploy/<name>, its ${NAME} placeholders replaced (what docs/deploy.md does with envsubst)."""
    text = (deploy / name).read_text()
    for key, value in placeholders.items():
        text = text.replace("${" + key + "}", value)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


class Steps:
    def __init__(
        self,
        cloud: Caller,
        *,
        region: str,
        uin: str,
        prefix: str = "imagesync-",
        namespace: str = "default",
        deploy: Path = DEPLOY,
    ) -> None:
        self.cloud, self.region, self.uin, self.prefix, self.namespace, self.deploy = (
            cloud,
            region,
            uin,
            prefix,
            namespace,
            deploy,
        )
        self.done: list[dict[str, Any]] = []

    def _call(self, product: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        answer = self.cloud.call(product, self.region, action, params, safe=True)
        self.done.append(
            {
                "action": f"{product}:{action}",
                **{
                    k: v
                    for k, v in params.items()
                    if k in ("FunctionName", "RuleName", "EventBusId", "EventBusName", "RuleId")
                },
            }
        )
        return answer

    def function(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _resource(self, key: str) -> str:
        return f"qcs::scf:{self.region}:uin/{self.uin}:namespace/{self.namespace}/function/{self.function(key)}"

    def invoke_config(self) -> None:
        config = load("function-event-invoke-config.json", self.deploy)
        for key in FUNCTIONS:
            self._call(
                "scf",
                "UpdateFunctionEventInvokeConfig",
                {"FunctionName": self.function(key), "Namespace": self.namespace, **config},
            )

    def dead_letter(self) -> None:
        config = load("completion-hook-dead-letter.json", self.deploy)
        self._call(
            "scf",
            "UpdateFunctionConfiguration",
            {"FunctionName": self.function("completion_hook"), "Namespace": self.namespace, **config},
        )

    def _bus_named(self, name: str) -> str | None:
        answer = self._call("eb", "ListEventBuses", {"Limit": 100})
        for bus in answer.get("EventBuses") or []:
            if bus.get("EventBusName") == name:
                return str(bus["EventBusId"])
        return None

    def _listed(self, product: str, action: str, params: dict[str, Any], key: str) -> list[dict[str, Any]]:
        """What a List* call answers under `key`; nothing when the endpoint does not know the action (an emulator
        without it: InvalidAction), so the step then creates without looking first."""
        try:
            return list(self._call(product, action, params).get(key) or [])
        except CloudError as exc:
            if exc.cloud_code != "InvalidAction":
                raise
            self.done.append({"action": f"{product}:{action}", "skipped": "InvalidAction at this endpoint"})
            return []

    def _rule(self, bus_id: str, name: str, pattern: dict[str, Any], description: str) -> str:
        for rule in self._listed("eb", "ListRules", {"EventBusId": bus_id, "Limit": 100}, "Rules"):
            if rule.get("RuleName") == name:
                return str(rule["RuleId"])
        answer = self._call(
            "eb",
            "CreateRule",
            {
                "EventBusId": bus_id,
                "RuleName": name,
                "Enable": True,
                "EventPattern": json.dumps(pattern),
                "Description": description,
            },
        )
        return str(answer["RuleId"])

    def _target(self, target: dict[str, Any]) -> None:
        resource = target["TargetDescription"]["ResourceDescription"]
        resource = resource.replace("function/imagesync-", f"function/{self.prefix}", 1)
        resource = resource.replace("namespace/default/", f"namespace/{self.namespace}/", 1)
        target["TargetDescription"]["ResourceDescription"] = resource
        listed = self._listed(
            "eb",
            "ListTargets",
            {"EventBusId": target["EventBusId"], "RuleId": target["RuleId"], "Limit": 100},
            "Targets",
        )
        if any((t.get("TargetDescription") or {}).get("ResourceDescription") == resource for t in listed):
            return
        self._call("eb", "CreateTarget", target)

    def create_image_rule(self, bus_id: str | None) -> str:
        """CloudAudit's CreateImage calls -> copy_request; returns the rule id."""
        bus_id = bus_id or self._bus_named("default")
        if not bus_id:
            raise CloudError(
                "ResourceNotFound.EventBus",
                "no event bus named `default` (the cloud-service bus): give its id with --event-bus-id",
            )
        rule_id = self._rule(
            bus_id,
            CREATE_IMAGE_RULE,
            load("eventbridge-pattern.json", self.deploy),
            "imagesync: copy new custom images by the replication rules",
        )
        self._target(
            load(
                "eventbridge-target.json",
                self.deploy,
                EVENT_BUS_ID=bus_id,
                RULE_ID=rule_id,
                REGION=self.region,
                TENCENTCLOUD_UIN=self.uin,
            )
        )
        return rule_id

    def completions_bus(self) -> str:
        """The EventBridge completion link: a custom bus, a rule, completion_hook as its target; returns the bus."""
        bus_id = self._bus_named(COMPLETIONS_BUS)
        if not bus_id:
            answer = self._call(
                "eb",
                "CreateEventBus",
                {"EventBusName": COMPLETIONS_BUS, "Description": "imagesync completion messages"},
            )
            bus_id = str(answer["EventBusId"])
        rule_id = self._rule(
            bus_id,
            COMPLETIONS_RULE,
            load("eventbridge-completions-pattern.json", self.deploy),
            "imagesync: each replica end to completion_hook",
        )
        self._target(
            load(
                "eventbridge-completions-target.json",
                self.deploy,
                COMPLETIONS_BUS_ID=bus_id,
                COMPLETIONS_RULE_ID=rule_id,
                REGION=self.region,
                TENCENTCLOUD_UIN=self.uin,
            )
        )
        return bus_id


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="imagesync deploy-steps", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--region",
        default=os.environ.get("REGION") or os.environ.get("TENCENTCLOUD_REGION"),
        help="the functions' region (default: $REGION or $TENCENTCLOUD_REGION)",
    )
    p.add_argument(
        "--uin",
        default=os.environ.get("TENCENTCLOUD_UIN") or os.environ.get("IMAGESYNC_UIN"),
        help="the account's uin, for the EventBridge targets (default: $TENCENTCLOUD_UIN)",
    )
    p.add_argument("--function-prefix", default="imagesync-", help="the functions' names are <prefix><key>")
    p.add_argument("--namespace", default="default", help="the functions' SCF namespace")
    p.add_argument(
        "--link",
        choices=("scf-async", "eventbridge"),
        default="scf-async",
        help="the completion link (IMAGESYNC_QUEUE); eventbridge also sets up its bus, rule and target",
    )
    p.add_argument(
        "--dead-letter",
        action="store_true",
        help="also set completion_hook's dead letter (a CMQ queue; SCF's dead letter is a beta)",
    )
    p.add_argument(
        "--no-create-image-rule",
        action="store_true",
        help="skip the EventBridge rule for CloudAudit CreateImage -> copy_request",
    )
    p.add_argument("--event-bus-id", default=None, help="the cloud-service bus (default: the bus named `default`)")
    p.add_argument("--deploy-dir", type=Path, default=DEPLOY, help="where the deploy/*.json files are")
    p.add_argument("--dry-run", action="store_true", help="print the calls, make none")
    return p


def main(argv: Sequence[str] | None = None, cloud: Caller | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.region:
        print("deploy-steps: give --region (or set REGION / TENCENTCLOUD_REGION)", file=sys.stderr)
        return 2
    needs_uin = not args.no_create_image_rule or args.link == "eventbridge"
    if needs_uin and not args.uin:
        print(
            "deploy-steps: give --uin (or set TENCENTCLOUD_UIN): EventBridge targets name the function by it",
            file=sys.stderr,
        )
        return 2
    dry = DryRun() if args.dry_run else None
    if cloud is None:
        from .adapters.tencent import TencentCloud

        cloud = dry or TencentCloud(endpoint=os.environ.get("IMAGESYNC_TENCENT_ENDPOINT", "").strip().rstrip("/"))
    steps = Steps(
        cloud,
        region=args.region,
        uin=args.uin or "",
        prefix=args.function_prefix,
        namespace=args.namespace,
        deploy=args.deploy_dir,
    )
    out: dict[str, Any] = {}
    try:
        steps.invoke_config()
        if args.dead_letter:
            steps.dead_letter()
        if not args.no_create_image_rule:
            out["create_image_rule_id"] = steps.create_image_rule(args.event_bus_id)
        if args.link == "eventbridge":
            out["IMAGESYNC_EVENT_BUS_ID"] = steps.completions_bus()
    except CloudError as exc:
        print(json.dumps({"error": exc.to_dict(), "done": steps.done}), file=sys.stderr)
        return 1
    out["done"] = dry.calls if dry else steps.done
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
