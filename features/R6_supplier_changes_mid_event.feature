@MP134B-R6
Feature: R6 - A meter whose Supplier changes during the SoLR event
  MP134B requirement R6 (act only on Devices of the failed Supplier), with a Device's
  responsible Supplier as a history: SEC modifications MP134A and MP185 let the SMKI Policy
  Management Authority delay moving the failed Supplier's market identifiers to the Supplier
  of Last Resort.

  Why: once a meter's identifiers have moved to the SoLR, the meter is no longer the failed
  Supplier's and the SoLR Contingency role must leave it alone: the new Supplier acts for
  that customer. While the move is delayed, the role may still help the customer. A switch
  booked for a later date is judged on who will own the meter when it happens.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days

  @MP134B-R6
  Scenario: A meter whose identifiers have already moved to the SoLR is refused, saying who owns it now
    Given the market identifiers of the SMETS1 electricity meter moved to SoLR Contingency Services an hour ago
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because the meter's Supplier is now another Supplier
    And the reason names SoLR Contingency Services as the meter's Supplier now

  @MP134B-R6
  Scenario: While the move is delayed, the role may still switch the meter
    Given the move of the SMETS1 electricity meter's market identifiers to SoLR Contingency Services is delayed until tomorrow
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is allowed

  @MP134B-R6
  Scenario: Once the delayed move happens, the role must leave the meter alone
    Given the move of the SMETS1 electricity meter's market identifiers to SoLR Contingency Services is delayed until tomorrow
    And 2 days have passed
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because the meter's Supplier is now another Supplier

  @MP134B-R6
  Scenario: A switch booked for after the move is refused today
    Given the move of the SMETS1 electricity meter's market identifiers to SoLR Contingency Services is delayed until tomorrow
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit in 2 days' time
    Then the request is refused because the meter moves to another Supplier before the switch takes effect
