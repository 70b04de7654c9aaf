@MP134B-R6
Feature: R6 - Only during a Supplier failure, on an active instruction from Ofgem
  MP134B requirement R6: by default the role may act only during a Supplier failure and
  on a specific, active Authority instruction; everything else is refused.

  Why: switching a customer's meter is normally for that customer's own Supplier. The
  SoLR Contingency role steps in only because a Supplier has failed and Ofgem has said
  so. The instruction names the failed Supplier and the SoLR Party and has a start and
  an end: outside that window, for any other Supplier's meters, or for a meter the DCC
  does not know, the role can do nothing. A request can be sent once only: a copy sent
  again is refused. "By default" matters: whether a role needs an instruction is set in
  its policy file, not in the software.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days

  @MP134B-R6
  Scenario: Allowed while Ofgem's instruction is in force, and the decision names that instruction
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is allowed
    And the decision names Ofgem's instruction as what allowed the role to act

  @MP134B-R6
  Scenario Outline: Refused when Ofgem's instruction is not in force
    Given <what happened>
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because no Authority instruction is in force

    Examples:
      | what happened                                       |
      | Ofgem's instruction takes effect only from tomorrow |
      | 31 days have passed                                 |

  @MP134B-R6
  Scenario: Refused for a meter of a Supplier that has not failed
    When the SoLR Contingency user asks to switch another Supplier's meter to credit
    Then the request is refused because the meter does not belong to the failed Supplier

  @MP134B-R6
  Scenario: Refused for a meter the DCC does not know
    When the SoLR Contingency user asks to switch a meter the DCC does not know to credit
    Then the request is refused because the DCC does not know that meter

  @MP134B-R6
  Scenario: A future-dated switch inside the instruction's window is allowed
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit in 10 days' time
    Then the request is allowed

  @MP134B-R6
  Scenario: A future-dated switch after the instruction ends is refused
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit in 40 days' time
    Then the request is refused because the switch would take effect after Ofgem's instruction ends

  @MP134B-R6
  Scenario: A future-dated switch may not be cancelled by the role
    Given the SoLR Contingency user has arranged for the SMETS1 electricity meter to switch to credit in 10 days' time
    When the SoLR Contingency user asks to cancel the future-dated switch of the SMETS1 electricity meter
    Then the request is refused because the role may not cancel future-dated commands

  @MP134B-R6
  Scenario: A policy that allows cancellations lets the role cancel its own future-dated switch
    Given the SoLR Contingency policy file is changed to say:
      """
      allow_cancellation: true
      """
    And the SoLR Contingency user has arranged for the SMETS1 electricity meter to switch to credit in 10 days' time
    When the SoLR Contingency user asks to cancel the future-dated switch of the SMETS1 electricity meter
    Then the request is allowed

  @MP134B-R6
  Scenario: A request sent again is refused, and the copy changes nothing
    Given the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    When the same request is sent again
    Then the request is refused because it repeats a request already accepted
    And the refused copy changed nothing, so a new request from the SoLR Contingency user is still allowed

  @MP134B-R6
  Scenario: By default, with no instruction from Ofgem, the role can do nothing
    Given Ofgem has given no instruction
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because no Authority instruction is in force

  @MP134B-R6
  Scenario: "By default" is set in the policy file: a policy that needs no instruction
    Given the SoLR Contingency policy file is changed to say:
      """
      requires_authority_instruction: false
      device_scope: any
      """
    And Ofgem has given no instruction
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is allowed
