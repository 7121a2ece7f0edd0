"""Region 2022-06-27: DescribeRegions(Product="cvm"), the successor of the frozen cvm DescribeRegions."""

from __future__ import annotations

from ..params import Params
from . import CallContext, Service

SERVICE = Service("region", "2022-06-27")


@SERVICE.action("DescribeRegions", {"Product", "Scene"}, needs_region=False)
def describe_regions(ctx: CallContext, p: Params) -> dict:
    p.text("Product", required=True)
    p.integer("Scene")
    regions = ctx.world.regions.describe()
    return {"TotalCount": len(regions), "RegionSet": regions}
