@MP134B-R4
Feature: R4 - SMETS1 requests with a data value out of bounds are deleted, not quarantined
  MP134B requirement R4 (anomaly detection), as the SEC has it (Section G6): a SMETS1
  Service Request whose data value is above a maximum or below a minimum is deleted by the
  DCC, and the User told, rather than quarantined for an officer to release.

  Why: a SMETS1 meter is commanded by the DCC on the User's behalf from the values in the
  request. A value out of bounds is a mistake or an attack; releasing it would do harm, so
  there is nothing for an officer to decide. A policy names the bounds, per SRV and value.
  The switch to credit carries no value; the scenarios use a role that may also set
  prepayment, whose disablement threshold is a value (the SoLR role itself may not).

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days
    And the policy lets the role set prepayment, with the disablement threshold of SMETS1 meters at least 100

  @MP134B-R4
  Scenario: A SMETS1 request whose disablement threshold is below the limit is deleted
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to prepayment
    Then the request is deleted, not quarantined, and nothing of it is kept to release

  @MP134B-R4
  Scenario: The limits are for SMETS1 meters only
    When the SoLR Contingency user asks to switch the SMETS2 electricity meter to prepayment
    Then the request is allowed
