@MP134B-R6
Feature: R6 - The life of Ofgem's instruction, as governance records it
  MP134B requirement R6: by default the role may act only during a Supplier failure and
  on a specific, active Authority instruction; everything else is refused.

  Why: the instruction is what lets the role act at all, so recording it is itself
  controlled. The DCC's governance officers record Ofgem's instruction in two steps: one
  officer proposes it and a second, different officer approves it ("four eyes"). Only
  an approved instruction lets requests through. Governance may suspend it, resume it,
  and end it when the Supplier of Last Resort takes over. There is never doubt which
  instruction governs a failed Supplier's meters: a second instruction for the same
  failed Supplier over the same time is refused. An instruction may be limited to some
  of the failed Supplier's meters. Every step, and every refused attempt, is recorded
  with the officer who took it and the reason given, in an audit trail in which any
  change to a recorded entry is detected.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party, and no instruction from Ofgem is recorded yet
    And SoLR Contingency Services has a registered SoLR Contingency user

  @MP134B-R6
  Scenario: One officer proposes the instruction
    When Alice (governance) proposes Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    Then the instruction is proposed by Alice (governance), awaiting a second officer's approval

  @MP134B-R6
  Scenario: Requests are refused while the instruction is only proposed
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because no Authority instruction is in force

  @MP134B-R6
  Scenario: The officer who proposed the instruction cannot approve it
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    When Alice (governance) approves the instruction
    Then the approval is refused because the officer who proposed it may not also approve it
    And the instruction is still only proposed

  @MP134B-R6
  Scenario: Approved by a second officer, the instruction lets requests through
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    When Bob (governance) approves the instruction
    Then the instruction is in force, proposed by Alice (governance) and approved by Bob (governance)
    And a request from the SoLR Contingency user to switch the SMETS1 electricity meter to credit is allowed

  @MP134B-R6
  Scenario: A suspended instruction lets nothing through
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    When Bob (governance) suspends the instruction
    Then the instruction is suspended
    And a request from the SoLR Contingency user to switch the SMETS1 electricity meter to credit is refused because no Authority instruction is in force

  @MP134B-R6
  Scenario: A resumed instruction lets requests through again
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    And Bob (governance) has suspended the instruction
    When Alice (governance) resumes the instruction
    Then the instruction is active
    And a request from the SoLR Contingency user to switch the SMETS1 electricity meter to credit is allowed

  @MP134B-R6
  Scenario: After the instruction is ended, requests are refused
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    And Bob (governance) has ended the instruction
    When the SoLR Contingency user asks to switch the SMETS1 gas meter to credit
    Then the request is refused because no Authority instruction is in force

  @MP134B-R6
  Scenario: An ended instruction cannot be resumed
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    And Bob (governance) has ended the instruction
    When Alice (governance) resumes the instruction
    Then the resumption is refused because an ended instruction cannot be resumed
    And the instruction is ended

  @MP134B-R6
  Scenario: A second instruction for the same failed Supplier over the same time is refused
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    When Bob (governance) proposes a second instruction for Failed Energy's customers, starting in 10 days' time for 30 days
    Then the proposal is refused because another instruction already covers Failed Energy at that time
    And no second instruction is recorded

  @MP134B-R6
  Scenario: A second instruction for the same failed Supplier may follow once the first one ends
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    When Bob (governance) proposes a second instruction for Failed Energy's customers, starting in 29 days' time for 30 days
    Then the second instruction is recorded as proposed

  @MP134B-R6
  Scenario Outline: An instruction limited to some meters refuses the others
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days, limited to the SMETS1 electricity meter
    And Bob (governance) has approved the instruction
    When the SoLR Contingency user asks to switch <meter> to credit
    Then the request is refused because the meter is not one of those Ofgem's instruction names

    Examples:
      | meter                        |
      | the SMETS1 gas meter         |
      | the SMETS2 electricity meter |

  @MP134B-R6
  Scenario: An instruction limited to some meters allows those it names
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days, limited to the SMETS1 electricity meter
    And Bob (governance) has approved the instruction
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is allowed

  @MP134B-R6
  Scenario: Every step is recorded with the officer who took it and the reason given
    When governance takes these steps on Ofgem's instruction to act for Failed Energy's customers:
      | officer            | step     | reason                                     |
      | Alice (governance) | proposes | Ofgem's letter of 22 November              |
      | Alice (governance) | approves | I checked it myself                        |
      | Bob (governance)   | approves | checked against Ofgem's letter             |
      | Bob (governance)   | suspends | Ofgem asked for a pause over a data query  |
      | Alice (governance) | resumes  | Ofgem confirmed the data                   |
      | Bob (governance)   | ends     | the Supplier of Last Resort has taken over |
    Then the instruction's history shows each step with its officer and reason:
      | step       | officer            | reason                                     |
      | proposal   | Alice (governance) | Ofgem's letter of 22 November              |
      | approval   | Bob (governance)   | checked against Ofgem's letter             |
      | suspension | Bob (governance)   | Ofgem asked for a pause over a data query  |
      | resumption | Alice (governance) | Ofgem confirmed the data                   |
      | ending     | Bob (governance)   | the Supplier of Last Resort has taken over |
    And the audit trail holds each attempt on the instruction, in order, with its officer:
      | entry            | officer            | reason                                               |
      | proposal         | Alice (governance) | Ofgem's letter of 22 November                        |
      | refused approval | Alice (governance) | the officer who proposed it may not also approve it |
      | approval         | Bob (governance)   | checked against Ofgem's letter                       |
      | suspension       | Bob (governance)   | Ofgem asked for a pause over a data query            |
      | resumption       | Alice (governance) | Ofgem confirmed the data                             |
      | ending           | Bob (governance)   | the Supplier of Last Resort has taken over           |

  @MP134B-R6 @MP134B-R4
  Scenario Outline: A change to the audit trail is detected, and the check names the entry
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    And the audit trail is intact
    When someone <changes> the audit trail's record of the approval by Bob (governance)
    Then the audit trail check reports the record of the approval by Bob (governance) as <found>

    Examples:
      | changes | found   |
      | alters  | altered |
      | deletes | missing |

  @MP134B-R6 @MP134B-R4
  Scenario: Deleting the newest entries of the audit trail is detected too
    Given Alice (governance) has proposed Ofgem's instruction to act for Failed Energy's customers, from yesterday for 30 days
    And Bob (governance) has approved the instruction
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    And the audit trail is intact
    When someone deletes the newest entry of the audit trail
    Then the audit trail check reports that its newest entries are missing
