"""GBCS Message Codes (the first two bytes of the General-Signing other-information).

Every GBCS use case that a device Service Request of the DUIS request matrix is carried by,
with its use-case name, plus the alerts and HAN-only codes GBCS also numbers. Facts from the
GBCS use-case and Message Code tables (as the DCC's gbcs-parser and duis-templates also
list them); 0x001A, 0x001B and 0x0019 are confirmed by RTDS vectors. Codes not listed
decode to ``None``, never to a guess.

``service_references`` are the DUIS Service References (e.g. "1.6") that use the case, as
the GBCS use-case table gives them; a test checks them against the request matrix. Codes
that the GBCS 4.x table no longer maps (ECS08, ECS26d/e/i, ECS30, ECS35f, ECS46c, ECS47,
ECS61a, GCS21d/e, GCS24: earlier versions of the same use cases) carry the Service
Reference their names match.
``critical`` is the GBCS message type: ``True`` for a Critical Command (SME.C.C), ``False``
for a Non-Critical one (SME.C.NC), ``None`` for alerts, responses-only and "see GBCS" cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MessageCode:
    code: int
    use_case: str
    name: str
    critical: bool | None = None
    service_references: tuple[str, ...] = ()

    @property
    def code_hex(self) -> str:
        return f"0x{self.code:04X}"

    @property
    def meter(self) -> str | None:
        """The meter a command of this use case is for: ECS... electricity, GCS... gas."""
        if self.use_case.startswith("ECS"):
            return "electricity"
        if self.use_case.startswith("GCS"):
            return "gas"
        return None


def _table(*entries: MessageCode) -> dict[int, MessageCode]:
    table: dict[int, MessageCode] = {}
    for entry in entries:
        # A duplicate code would silently shadow an entry: fail at import instead.
        if entry.code in table:
            raise ValueError(f"duplicate message code {entry.code_hex}")
        table[entry.code] = entry
    return table


C, NC = True, False  # GBCS message types SME.C.C and SME.C.NC


def _uc(code: int, use_case: str, name: str, critical: bool | None, *srs: str) -> MessageCode:
    return MessageCode(code, use_case, name, critical, srs)


MESSAGE_CODES: dict[int, MessageCode] = _table(
    # Communications Hub and generic (CS...) use cases
    _uc(0x0001, "CCS01", "Add Device to CHF device log", NC, "8.11"),
    _uc(0x0002, "CCS02", "Remove device from CHF device log", NC, "8.11"),
    _uc(0x0003, "CCS03", "Restore CHF Device Log", NC, "8.12"),
    _uc(0x0007, "CS01a", "Apply Prepayment Top Up to an ESME", NC, "2.2"),
    _uc(0x0008, "CS02a", "Provide Security Credentials Details", None, "6.24"),
    _uc(0x000A, "CS02c", "Issue Security Credentials", C, "6.17"),
    _uc(0x000B, "CS02d", "Update Device Certificates on Device", C, "6.15"),
    _uc(0x000C, "CS02e", "Provide Device Certificates from Device", None, "6.24"),
    _uc(0x000D, "CS03A1", "Method A Join (Meter)", C, "8.7"),
    _uc(0x000E, "CS03B", "Method B Join", NC, "8.7"),
    _uc(0x000F, "CS04AC", "Method A or C Unjoin", C, "8.8"),
    _uc(0x0010, "CS04B", "Method B Unjoin", NC, "8.8"),
    _uc(0x0012, "CS06", "Activate Firmware", C, "11.3"),
    _uc(0x0013, "CS07", "Read Device Join Details", NC, "8.9"),
    _uc(0x0014, "CS10a", "Read ZigBee Device Event Log", NC, "6.13"),
    _uc(0x0015, "CS11", "Clear ZigBee Device Event Log", NC, "3.3"),
    _uc(0x0018, "CS14", "Device Addition To / Removal From HAN Whitelist Alerts", None),
    _uc(0x0097, "CS01b", "Apply Prepayment Top Up to a GSME", NC, "2.2"),
    _uc(0x00A1, "CS10b", "Read ZigBee Device Security Log", NC, "6.13"),
    _uc(0x00AB, "CS03A2", "Method A Join (non Meter)", C, "8.7"),
    _uc(0x00AF, "CS03C", "Method C Join", C, "8.7"),
    _uc(0x00FE, "CCS07", "Read CHF Device Logs", NC, "8.9"),
    _uc(0x010F, "CCS06", "Read CHF device log and check HAN communications", NC, "8.9"),
    _uc(0x0128, "CCS08", "Firmware Transfer Alert", None),
    _uc(0x0129, "CS08", "Read PPMID/HCALCS Firmware Version", None, "11.2"),
    # Update Security Credentials, one code per credential replaced and by whom
    _uc(0x0100, "CS02b", "Update Security Credentials (rootBySupplier)", C),
    _uc(0x0101, "CS02b", "Update Security Credentials (rootByWanProvider)", C),
    _uc(0x0102, "CS02b", "Update Security Credentials (supplierBySupplier)", C, "6.15", "6.21"),
    _uc(0x0103, "CS02b", "Update Security Credentials (networkOperatorByNetworkOperator)", C, "6.15", "6.21"),
    _uc(0x0104, "CS02b", "Update Security Credentials (accessControlBrokerByACB)", C, "8.5"),
    _uc(0x0105, "CS02b", "Update Security Credentials (wanProviderByWanProvider)", C),
    _uc(0x0106, "CS02b", "Update Security Credentials (transCoSByTransCoS)", C),
    _uc(0x0107, "CS02b", "Update Security Credentials (supplierByTransCoS)", C, "6.23"),
    _uc(0x0108, "CS02b", "Update Security Credentials (anyExceptAbnormalRootByRecovery)", C),
    _uc(0x0109, "CS02b", "Update Security Credentials (anyByContingency)", C),
    # Electricity (ESME)
    _uc(0x0019, "ECS01a", "Set Tariff and Price on ESME", C, "1.1"),
    _uc(0x001A, "ECS02", "Set ESME Payment Mode to Credit", C, "1.6"),
    _uc(0x001B, "ECS03", "Set ESME Payment Mode to Prepayment", C, "1.6"),
    _uc(0x001C, "ECS04a", "Adjust Meter Balance on the ESME", C, "1.5"),
    _uc(0x001D, "ECS05", "Reset Tariff Block Counter Matrix", C, "1.7"),
    _uc(0x001E, "ECS07", "Manage Debt on the ESME", C, "2.3"),
    _uc(0x001F, "ECS08", "Update Prepayment Configuration on ESME", C, "2.1"),
    _uc(0x0020, "ECS09", "Activate Emergency Credit Remotely on ESME", C, "2.5"),
    _uc(0x0021, "ECS10", "Send Message to ESME", NC, "3.1"),
    _uc(0x0022, "ECS12", "Set Change of Tenancy date on ESME", NC, "3.2"),
    _uc(0x0023, "ECS14", "Disable Privacy PIN Protection on ESME", NC, "3.5"),
    _uc(0x0024, "ECS15a", "Clear ESME Event Log", NC, "3.3"),
    _uc(0x0025, "ECS16", "Write Supplier Contact Details on ESME", NC, "3.4"),
    _uc(0x0026, "ECS17a", "Read ESME Energy Registers (Export Energy)", NC, "4.2"),
    _uc(0x0027, "ECS17b", "Read ESME Energy Registers (Import Energy)", NC, "4.1"),
    _uc(0x0028, "ECS17c", "Read ESME Energy Registers (Power)", NC, "4.16"),
    _uc(0x0029, "ECS17d", "Read ESME Energy Register (TOU)", NC, "4.1"),
    _uc(0x002A, "ECS17e", "Read ESME Energy Register (TOU with Blocks)", NC, "4.1"),
    _uc(0x002B, "ECS18a", "Read Maximum Demand Registers (export)", NC, "4.12"),
    _uc(0x002C, "ECS18b", "Read Maximum Demand Registers (import)", NC, "4.12"),
    _uc(0x002D, "ECS19", "Read ESME Prepayment Registers", NC, "4.3"),
    _uc(0x002E, "ECS20a", "Read ESME Billing Data Log (payment based debt payments)", NC, "4.4"),
    _uc(0x002F, "ECS20b", "Read ESME Billing Data Log (change of mode / tariff triggered exc export)", NC, "4.4"),
    _uc(0x0030, "ECS20c", "Read ESME Billing Data Log (billing calendar triggered exc export)", NC, "4.4"),
    _uc(0x0033, "ECS21a", "Read Electricity Daily Read Log (exc export)", NC, "4.6"),
    _uc(0x0034, "ECS21b", "Read Electricity (Prepayment) Daily Read Log", NC, "4.14"),
    _uc(0x0035, "ECS21c", "Read Electricity Daily Read Log (export only)", NC, "4.6"),
    _uc(0x0036, "ECS22a", "Read Electricity Half Hour Profile Data (export)", NC, "4.8"),
    _uc(0x0037, "ECS22b", "Read Electricity Half Hour Profile Data (active import)", NC, "4.8"),
    _uc(0x0038, "ECS22c", "Read Electricity Half Hour Profile Data (reactive import)", NC, "4.8"),
    _uc(0x0039, "ECS23", "Read Voltage Operational Data", NC, "4.10"),
    _uc(0x003A, "ECS24", "Read ESME Tariff Data", NC, "4.11"),
    _uc(0x003B, "ECS26a", "Read ESME Configuration Data Prepayment", NC, "4.13"),
    _uc(0x003C, "ECS26b", "Read ESME Configuration Voltage Data", NC, "6.2"),
    _uc(0x003D, "ECS26c", "Read ESME Configuration Data Device Information (randomisation)", NC, "6.2"),
    _uc(0x003E, "ECS26d", "Read ESME Configuration Data Device Information (Billing Calendar)", NC, "6.2"),
    _uc(0x003F, "ECS26e", "Read ESME Configuration Data Device Information (device identity exc MPAN)", NC, "6.2"),
    _uc(0x0040, "ECS26f", "Read ESME Configuration Data Device Information (instantaneous power thresholds)", NC, "6.2"),
    _uc(0x0042, "ECS27", "Read ESME Load Limit Data", NC, "4.15"),
    _uc(0x0043, "ECS28a", "Set Load Limit Configurations - General Settings", C, "6.4"),
    _uc(0x0044, "ECS28b", "Set Load Limit Configuration Counter Reset", NC, "6.4"),
    _uc(0x0045, "ECS29a", "Set Voltage Configurations on ESME", NC, "6.5"),
    _uc(0x0046, "ECS30", "Set Billing Calendar on the ESME", C, "6.8"),
    _uc(0x0047, "ECS34", "Set Instantaneous Power Threshold Configuration", NC, "6.12"),
    _uc(0x0048, "ECS35a", "Read ESME Event Log", NC, "6.13"),
    _uc(0x0049, "ECS35b", "Read ESME Security Log", NC, "6.13"),
    _uc(0x004A, "ECS37", "Set Maximum Demand Configurable Time Period", NC, "6.18"),
    _uc(0x004B, "ECS38", "Update Randomised Offset Limit", C, "7.12"),
    _uc(0x004C, "ECS39a", "Set MPAN Value on the ESME", NC, "6.20"),
    _uc(0x004D, "ECS39b", "Set Export MPAN Value on the ESME", NC, "6.20"),
    _uc(0x004E, "ECS40", "Read MPAN Value on the ESME", NC, "6.2"),
    _uc(0x004F, "ECS42", "Remotely Close the Load Switch on the ESME", C, "7.1"),
    _uc(0x0050, "ECS43", "Remotely Open the Load Switch on the ESME", C, "7.2"),
    _uc(0x0051, "ECS44", "Arm Load Switch in ESME", C, "7.3"),
    _uc(0x0052, "ECS45", "Read Status of Load Switch in the ESME", NC, "7.4"),
    _uc(0x0053, "ECS46a", "Set HC ALCS or ALCS Labels in ESME", C, "6.14"),
    _uc(0x0054, "ECS46c", "Set HC ALCS and ALCS configuration in ESME (excluding labels)", C, "6.14"),
    _uc(0x0055, "ECS47", "Set or Reset HC ALCS or ALCS State", C, "7.5", "7.6", "7.8"),
    _uc(0x0058, "ECS50", "Send CIN to ESME", NC, "9.1"),
    _uc(0x0059, "ECS52", "Read ESME/Comms Hub Firmware Version", NC, "11.2"),
    _uc(0x005A, "ECS57", "Reset ESME Maximum Demand Registers", NC, "6.18"),
    _uc(0x005E, "ECS61c", "Read Boost Button Data from ESME", NC, "7.11"),
    _uc(0x005F, "ECS62", "Set ALCS and Boost Button Association", NC, "7.9", "7.10"),
    _uc(0x0060, "ECS66", "Read ESME Daily Consumption Log", NC, "4.17"),
    _uc(0x0061, "ECS68", "ESME Critical Sensitive Alert (Billing Data Log)", None),
    _uc(0x0062, "ECS70", "Set Clock on ESME", C, "6.11", "8.1"),
    _uc(0x0067, "ECS80", "Supply Outage Restore Alert from ESME", None),
    _uc(0x0068, "ECS81", "Set Supply Tamper State on ESME", C, "6.25"),
    _uc(0x0069, "ECS82", "Read Meter Balance for ESME", NC, "4.18"),
    _uc(0x0092, "ECS26i", "Read Configuration Data Device Information (CHF identity)", NC, "6.2"),
    _uc(0x0093, "ECS35c", "Read CHF Event Log", NC, "6.13"),
    _uc(0x0094, "ECS35d", "Read CHF Security Log", NC, "6.13"),
    _uc(0x00A2, "ECS01b", "Set Price on ESME", C, "1.2"),
    _uc(0x00AC, "ECS25a", "Set Alert Behaviours - ESME - Supplier", NC, "6.22"),
    _uc(0x00AE, "ECS29b", "Set Voltage Configurations on ESME - 3ph", NC, "6.5"),
    _uc(0x00B0, "ECS25b", "Set Alert Behaviours - ESME - Network Operator", NC, "6.22"),
    _uc(0x00B3, "ECS04b", "Reset Meter Balance on the ESME", C, "1.5"),
    _uc(0x00B7, "ECS01c", "Set Tariff and Price on ESME secondary", C, "1.1"),
    _uc(0x00B9, "ECS35e", "Read ESME Power Event Log", NC, "6.13"),
    _uc(0x00BA, "ECS35f", "Read ALCS Event Log", NC, "6.13"),
    _uc(0x00BB, "ECS61a", "Read HC ALCS and ALCS Data from ESME", NC, "7.7"),
    _uc(0x00BC, "ECS23b", "Read Voltage Operational Data - 3 Phase", NC, "4.10"),
    _uc(0x00BD, "ECS24b", "Read ESME Tariff Data - second element", NC, "4.11"),
    _uc(0x00BE, "ECS26j", "Read ESME Configuration Data Device Information (Payment Mode)", NC, "6.2"),
    _uc(0x00C1, "ECS15c", "Clear ALCS Event Log", NC, "3.3"),
    _uc(0x00C6, "ECS26k", "Read ESME Configuration Voltage Data - 3 phase", NC, "6.2"),
    _uc(0x00C7, "ECS01d", "Set Price on ESME secondary", C, "1.2"),
    _uc(0x00C9, "ECS20d", "Read ESME Billing Data Log (prepayment credits)", NC, "4.4"),
    _uc(0x00D1, "ECS29c", "Set Voltage Configurations on ESME without counter reset", NC, "6.5"),
    _uc(0x00D2, "ECS29d", "Set Voltage Configurations on polyphase ESME without counter reset", NC, "6.5"),
    _uc(0x00D3, "ECS29e", "Reset RMS Voltage Counters on ESME", NC, "6.27"),
    _uc(0x00D4, "ECS29f", "Reset RMS Voltage Counters on polyphase ESME", NC, "6.27"),
    _uc(0x00D7, "ECS30a", "Set Billing Calendar on the ESME - all periodicities", C, "6.8"),
    _uc(0x00D9, "ECS26l", "Read ESME Configuration Data Device Information (Billing Calendar - all periodicities)", NC, "6.2"),
    _uc(0x00DB, "ECS48", "Configure daily resetting of Tariff Block Counter Matrix", C, "6.26"),
    _uc(0x00DE, "ECS08a", "Update Prepayment Configuration on ESME", C, "2.1"),
    _uc(0x00EA, "ECS25a1", "Set Event Behaviours - ESME to HAN Device - Supplier", NC, "6.22"),
    _uc(0x00EB, "ECS25a2", "Set Event Behaviours - ESME audible alarm - Supplier", NC, "6.22"),
    _uc(0x00EC, "ECS25a3", "Set Event Behaviours - ESME logging - Supplier", NC, "6.22"),
    _uc(0x00ED, "ECS25b3", "Set Event Behaviours - ESME logging - Network Operator", NC, "6.22"),
    _uc(0x00EE, "ECS25r1", "Read non-critical event and alert behaviours - ESME - Supplier", NC, "6.2"),
    _uc(0x00EF, "ECS25r2", "Read non-critical event and alert behaviours - ESME - Network Operator", NC, "6.2"),
    _uc(0x00F9, "ECS26m", "Read ESME Configuration Data Device Information (identity, type and supply tamper state)", NC, "6.2"),
    _uc(0x00FA, "ECS26n", "Read CHF Configuration Data Device Information (CH identity and type)", NC, "6.2"),
    _uc(0x00FD, "ECS35g", "Read ALCS Event Log", NC, "6.13"),
    # Gas (GSME and GPF)
    _uc(0x006B, "GCS01a", "Set Tariff and Price on GSME", C, "1.1"),
    _uc(0x006C, "GCS02", "Set GSME Payment Mode to Credit", C, "1.6"),
    _uc(0x006D, "GCS03", "Set GSME Payment Mode to Prepayment", C, "1.6"),
    _uc(0x006E, "GCS04", "Manage Debt on the GSME", C, "2.3"),
    _uc(0x006F, "GCS05", "Update Prepayment Configurations on GSME", C, "2.1"),
    _uc(0x0070, "GCS06", "Activate Emergency Credit Remotely on GSME", C, "2.5"),
    _uc(0x0071, "GCS07", "Send Message to GSME", NC, "3.1"),
    _uc(0x0072, "GCS09", "Set Change of Tenancy date on GPF", NC, "3.2"),
    _uc(0x0073, "GCS11", "Disable Privacy PIN Protection on GSME", NC, "3.5"),
    _uc(0x0074, "GCS13a", "Read GSME Consumption Register", NC, "4.1"),
    _uc(0x0075, "GCS14", "Read GSME Prepayment Registers", NC, "4.3"),
    _uc(0x0076, "GCS15c", "Read GSME Billing Data Log (billing calendar triggered)", NC, "4.4"),
    _uc(0x0077, "GCS16a", "Read GSME Daily Read Log", NC, "4.6"),
    _uc(0x0078, "GCS17", "Read GSME Profile Data Log", NC, "4.8"),
    _uc(0x0079, "GCS18", "Read Gas Network Data Log", NC, "4.10"),
    _uc(0x007B, "GCS21a", "Read Gas Configuration Data Device Information", NC, "6.2"),
    _uc(0x007C, "GCS23", "Set CV and Conversion Factor Value(s) on the GSME", C, "6.6"),
    _uc(0x007D, "GCS24", "Set Uncontrolled Gas Flow Rate and Supply Tamper State on the GSME", C, "6.7"),
    _uc(0x007E, "GCS25", "Set Billing Calendar on the GSME", C, "6.8"),
    _uc(0x007F, "GCS28", "Set Clock on GSME", C),
    _uc(0x0080, "GCS31", "Start Network Data Log on GSME", NC, "14.1"),
    _uc(0x0081, "GCS32", "Remotely close the valve in the GSME", C, "7.2"),
    _uc(0x0082, "GCS33", "Read GSME Valve Status", NC, "7.4"),
    _uc(0x0083, "GCS36", "Send CIN to GSME", NC, "9.1"),
    _uc(0x0084, "GCS38", "Read GSME Firmware Version", NC, "11.2"),
    _uc(0x0085, "GCS39", "Arm Valve in GSME", C, "7.3"),
    _uc(0x0086, "GCS40a", "Adjust Prepayment Mode Meter Balance on the GSME", C, "1.5"),
    _uc(0x0087, "GCS41", "Set MPRN Value on the GSME", NC, "6.20"),
    _uc(0x0088, "GCS44", "Write Contact Details on GSME", NC, "3.4"),
    _uc(0x0089, "GCS46", "Read MPRN on the GSME", NC, "6.2"),
    _uc(0x008B, "GCS53", "Push Billing Data Log as an Alert", None),
    _uc(0x008C, "GCS59", "Restore GPF Device Log", NC, "8.12"),
    _uc(0x008D, "GCS60", "Read Meter Balance for GSME", NC, "4.18"),
    _uc(0x0096, "GCS16b", "Read GSME Daily Read log(s) (prepayment)", NC, "4.14"),
    _uc(0x009D, "GCS21d", "Read GSME Configuration Data Device Information (BillingCalendar)", NC, "6.2"),
    _uc(0x009E, "GCS21e", "Read GSME/GPF Configuration Data Device Information (device identity)", NC, "6.2"),
    _uc(0x009F, "GCS21f", "Read GSME Tariff Data", NC, "4.11"),
    _uc(0x00A0, "GCS61", "Read Gas Daily Consumption Log", NC, "4.17"),
    _uc(0x00A3, "GCS01b", "Set Price on GSME", C, "1.2"),
    _uc(0x00AD, "GCS20", "Set Alert Behaviours - GSME", NC, "6.22"),
    _uc(0x00B2, "GCS62", "Backup GPF Device Log", None),
    _uc(0x00B4, "GCS40b", "Reset Prepayment Mode Meter Balance on the GSME", C, "1.5"),
    _uc(0x00B5, "GCS21b", "Read GSME Configuration Data Prepayment", NC, "4.13"),
    _uc(0x00B6, "GCS13c", "Read GSME Register (TOU)", NC, "4.1"),
    _uc(0x00B8, "GCS13b", "Read GSME Block Counters", NC, "4.1"),
    _uc(0x00BF, "GCS21j", "Read GSME Configuration Data Device Information (Payment Mode)", NC, "6.2"),
    _uc(0x00C0, "GCS40c", "Adjust Credit Mode Meter Balance on the GSME", C, "1.5"),
    _uc(0x00C2, "GCS40d", "Reset Credit Mode Meter Balance on the GSME", C, "1.5"),
    _uc(0x00C3, "GCS15b", "Read GSME Billing Data Log (change of mode / tariff triggered)", NC, "4.4"),
    _uc(0x00C4, "GCS15d", "Read GSME Billing Data Log (payment-based debt payments)", NC, "4.4"),
    _uc(0x00C5, "GCS15e", "Read GSME Billing Data Log (prepayment credits)", NC, "4.4"),
    _uc(0x00D8, "GCS25a", "Set Billing Calendar on the GSME - all periodicities", C, "6.8"),
    _uc(0x00DA, "GCS21k", "Read GSME Configuration Data Device Information (BillingCalendar - all periodicities)", NC, "6.2"),
    _uc(0x00F1, "GCS20r", "Read non-critical event and alert behaviours - GSME - Supplier", NC, "6.2"),
    _uc(0x00FB, "GCS21m", "Read GSME Configuration Data Device Information (identity, type and supply tamper / depletion state)", NC, "6.2"),
    _uc(0x00FC, "GCS24a", "Set Uncontrolled Gas Flow Rate and Supply Tamper State on the GSME (SMETS4)", C, "6.7"),
    # Dual Band Communications Hub (Sub GHz)
    _uc(0x010A, "DBCH01", "Read CHF Sub GHz Channel", NC, "6.31"),
    _uc(0x010B, "DBCH02", "Read CHF Sub GHz Channel Log", NC, "6.32"),
    _uc(0x010C, "DBCH03", "Read CHF Sub GHz Configuration", NC, "6.30"),
    _uc(0x010D, "DBCH04", "Set CHF Sub GHz Configuration", NC, "6.28"),
    _uc(0x010E, "DBCH05", "Request CHF Sub GHz Channel Scan", NC, "6.29"),
    _uc(0x0110, "DBCH06", "Limited Duty Cycle Action Taken Sub GHz Alert", None),
    _uc(0x0111, "DBCH07", "Sub GHz Channel Changed Sub GHz Alert", None),
    _uc(0x0112, "DBCH08", "Sub GHz Channel Scan Request Assessment Outcome Sub GHz Alert", None),
    _uc(0x0113, "DBCH09", "Sub GHz Configuration Changed Sub GHz Alert", None),
    _uc(0x0114, "DBCH10", "Message Discarded Due to Duty Cycle Management Sub GHz Alert", None),
    _uc(0x0115, "DBCH11", "No More Sub GHz Device Capacity Sub GHz Alert", None),
    # HAN-only (PPMID, HCALCS): Message Codes for the Device's own logs, no Service Request
    _uc(0x0090, "PCS02", "Activate Emergency Credit on GSME from PPMID", None),
    _uc(0x009B, "PCS01", "Apply Prepayment Top Up to a GSME using PPMID", None),
    _uc(0x0116, "PECS01", "Apply Prepayment Top Up to an ESME using PPMID", None),
    _uc(0x0117, "PECS02", "Activate Emergency Credit on ESME from PPMID", None),
    _uc(0x0118, "PECS03", "Request to Enable ESME Supply from PPMID", None),
    _uc(0x0119, "HECS01", "Request Control of a HAN Connected Auxiliary Load Control Switch from HCALCS", None),
    # Alerts not tied to one use case
    _uc(0x00CA, "ALERT", "Future Dated Firmware Activation Alert", None),
    _uc(0x00CB, "ALERT", "Future Dated Update Security Credentials Alert", None),
    _uc(0x00CC, "ALERT", "Future Dated Execution Of Instruction Alert (DLMS COSEM)", None),
    _uc(0x00CD, "ALERT", "Future Dated Execution Of Instruction Alert (GBZ)", None),
    _uc(0x00CE, "ALERT", "Firmware Distribution Receipt Alert (ESME)", None),
    _uc(0x00CF, "ALERT", "Firmware Distribution Receipt Alert (GSME)", None),
    _uc(0x00D5, "ALERT", "Failure to Deliver Remote Party Message to ESME Alert", None),
    _uc(0x00F0, "ALERT", "Meter Integrity Issue Warning Alert - ESME", None),
    _uc(0x00F2, "ALERT", "Meter Integrity Issue Warning Alert - GSME", None),
    _uc(0x1000, "ALERT", "Generic Critical Alert", None),
    _uc(0x1001, "ALERT", "Generic Non Critical Alert", None),
)

# Use cases of device Service Requests in the matrix whose Message Code is in neither source
# (GBCS 4.x additions): listed so that coverage is checked, never given a guessed code.
USE_CASES_WITHOUT_A_KNOWN_CODE: dict[str, tuple[str, str]] = {
    "ECS46d": ("6.14", "Set Auxiliary Controller Calendar"),
    "ECS47a": ("7.13", "Set Auxiliary Controller [n] State"),
    "ECS47e": ("7.16", "Limit APC [n] Level"),
    "ECS61d": ("7.14", "Read Auxiliary Controller Configuration Data"),
    "ECS61e": ("7.15", "Read Auxiliary Controller Operational Data"),
    "CS02f": ("6.24", "Provide Security Credential Details (ESME and SAPC)"),
    "CS02g": ("6.15", "Update Load Controller Security Credentials"),
}

# The "switch to Credit mode" commands (ECS02, GCS02).
CREDIT_MODE_CODES: frozenset[int] = frozenset({0x001A, 0x006C})


def lookup(code: int) -> MessageCode | None:
    """The table entry for ``code``, or ``None`` when the code is not in the table."""
    return MESSAGE_CODES.get(code)


def code_fields(code: int | None) -> dict[str, Any]:
    """The Message Code fields of a decoded GBCS header: the code, in hex, and its use case."""
    known = lookup(code) if code is not None else None
    return {
        "message_code": code,
        "message_code_hex": f"0x{code:04X}" if code is not None else None,
        "use_case": known.use_case if known else None,
        "use_case_name": known.name if known else None,
    }
