@MP134B-R7
Feature: R7 - Alerts for the failed Supplier's meters reach its Shared Resource Provider
  MP134B requirement R7: alerts for the failed Supplier's Devices keep flowing to the
  failed Supplier's Shared Resource Provider (SRP) after its certificates are revoked.
  No alert is lost.

  Why: meters keep raising alerts after their Supplier fails: a customer's supply
  interrupted, a meter tampered with, a power cut. The DCC sends each alert to the
  Supplier's own user, but once the SMKI has revoked the failed Supplier's certificates
  nobody can receive it there. The Shared Resource Provider that served the failed
  Supplier takes its alerts over, so that someone can act on them. If no SRP is known
  yet, the alert waits in a queue and is routed once one is registered; it is never
  dropped.

  What "routed to" means: the engine decides, and records, where each alert must go;
  handing it over to that user or SRP is the job of the DCC system that embeds the engine. Other Suppliers' alerts are untouched. The SoLR Party does not get
  the failed Supplier's alerts unless its policy file says so.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days
    And Failed Energy and Steady Power each have a user that receives their meters' alerts

  @MP134B-R7
  Scenario: Before its certificates are revoked, the failed Supplier's alerts are routed to its own user
    When the DCC sends a device alert for the SMETS2 electricity meter to Failed Energy's user
    Then the alert is routed to Failed Energy's own user

  @MP134B-R7
  Scenario Outline: After its certificates are revoked, the failed Supplier's alerts are routed to its SRP
    Given Northern Shared Services is registered as Failed Energy's Shared Resource Provider
    And the SMKI has revoked Failed Energy's certificates
    When the DCC sends <alert> for <meter> to Failed Energy's user
    Then the alert is routed to Northern Shared Services

    Examples:
      | alert                | meter                        |
      | a device alert       | the SMETS2 electricity meter |
      | a power outage alert | the SMETS1 gas meter         |

  @MP134B-R7
  Scenario: An older certificate that expired does not keep the alerts with a user nobody can reach
    Given Northern Shared Services is registered as Failed Energy's Shared Resource Provider
    And the SMKI has revoked Failed Energy's certificates
    And Failed Energy's user also holds an older certificate, which expired before the failure
    When the DCC sends a device alert for the SMETS2 electricity meter to Failed Energy's user
    Then the alert is routed to Northern Shared Services

  @MP134B-R7
  Scenario: With no SRP registered, the alert waits in the queue of alerts not yet routed
    Given the SMKI has revoked Failed Energy's certificates
    When the DCC sends a device alert for the SMETS2 gas meter to Failed Energy's user
    Then the alert waits in the queue of alerts not yet routed

  @MP134B-R7
  Scenario: A waiting alert is routed once an SRP is registered
    Given the SMKI has revoked Failed Energy's certificates
    And the DCC has sent a device alert for the SMETS2 gas meter to Failed Energy's user
    When Northern Shared Services is registered as Failed Energy's Shared Resource Provider and the waiting alerts are routed again
    Then the waiting alert is routed to Northern Shared Services
    And no alert is left waiting

  @MP134B-R7
  Scenario: An alert for a Supplier that has not failed is untouched
    Given Northern Shared Services is registered as Failed Energy's Shared Resource Provider
    And the SMKI has revoked Failed Energy's certificates
    When the DCC sends a device alert for another Supplier's meter to Steady Power's user
    Then the alert is routed to Steady Power's own user

  @MP134B-R7
  Scenario: By default the SoLR Party does not receive the failed Supplier's alerts
    Given Northern Shared Services is registered as Failed Energy's Shared Resource Provider
    And the SMKI has revoked Failed Energy's certificates
    When the DCC sends a device alert for the SMETS2 electricity meter to Failed Energy's user
    Then the alert is routed to Northern Shared Services
    And SoLR Contingency Services receives no copy of the alert

  @MP134B-R7
  Scenario: "By default" is set in the policy file: a policy that sends the SoLR Party a copy
    Given the SoLR Contingency policy file says the SoLR Party is to receive copies of a failed Supplier's alerts
    And Northern Shared Services is registered as Failed Energy's Shared Resource Provider
    And the SMKI has revoked Failed Energy's certificates
    When the DCC sends a device alert for the SMETS2 electricity meter to Failed Energy's user
    Then the alert is routed to Northern Shared Services, with a copy to SoLR Contingency Services

  @MP134B-R7
  Scenario: No alert is lost across a mixed run
    Given the DCC has sent a device alert for the SMETS1 electricity meter to Failed Energy's user
    And the SMKI has revoked Failed Energy's certificates
    When the DCC sends these alerts:
      | alert                | for                          | to                           |
      | a device alert       | the SMETS2 electricity meter | Failed Energy's user         |
      | a power outage alert | the SMETS1 gas meter         | Failed Energy's user         |
      | a device alert       | another Supplier's meter     | Steady Power's user          |
      | a device alert       | the SMETS2 gas meter         | a user the DCC does not know |
      | a device alert       | the SMETS2 gas meter         | Failed Energy's user         |
    And Northern Shared Services is registered as Failed Energy's Shared Resource Provider and the waiting alerts are routed again
    Then every alert the DCC sent is accounted for, each either routed or waiting
    And the alerts for Failed Energy's meters sent after the revocation were routed to Northern Shared Services
    And only the alert addressed to a user the DCC does not know is still waiting
