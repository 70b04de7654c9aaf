@MP134B-R5
Feature: R5 - Requests may only switch meters to Credit
  MP134B requirement R5: request content is checked. The Service Request body (for
  SMETS1 meters) and the GBCS payload of the Signed Pre-Command (for SMETS2 and later
  meters) may only change the Payment Mode to Credit.

  Why: the role exists so that customers of a failed Supplier are not left on
  prepayment meters they can no longer top up. Switching a meter the other way, to
  Prepayment, or sending any other command inside an allowed request, would do the
  opposite of what the role is for.

  How the two kinds of request differ:
  - "asks to switch" is a Service Request: the User says what it wants and the DCC
    builds the command for the meter. The engine checks what the request asks for.
    SMETS1 meters take only this kind.
  - "sends a signed command" is a Signed Pre-Command: the request carries the very
    command the meter will carry out, already signed. The engine reads that command and
    checks that it is a command, that it switches to Credit, that it is for the kind of
    meter it is sent to, that it is addressed to the meter the request names, that it
    was made for the user sending it and not accepted before, and that its signature is
    genuine and made by someone the policy trusts.

  Who signs a signed command: requirement R2 says the role never holds the Digital
  Signing certificate a Supplier signs such commands with. So, as published, the policy
  trusts nobody to sign them, and the role switches meters by Service Request. A
  deployment in which another party (such as a DCC signing service) signs the role's
  commands names that party in the policy; most scenarios below assume one does.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days
    And the DCC's Pre-Command signing service is trusted to sign the SoLR Contingency role's commands

  @MP134B-R5
  Scenario Outline: Switching a meter to credit by Service Request is allowed
    When the SoLR Contingency user asks to switch <meter> to credit
    Then the request is allowed

    Examples:
      | meter                        |
      | the SMETS1 electricity meter |
      | the SMETS1 gas meter         |
      | the SMETS2 electricity meter |
      | the SMETS2 gas meter         |

  @MP134B-R5
  Scenario: Switching a device that is not a meter is refused
    Given a Failed Energy customer's in-home display is registered with the DCC
    When the SoLR Contingency user asks to switch the in-home display to credit
    Then the request is refused because only electricity and gas meters have a payment mode to switch

  @MP134B-R5
  Scenario Outline: Switching a meter to prepayment by Service Request is refused
    When the SoLR Contingency user asks to switch <meter> to prepayment
    Then the request is refused because the request may only switch the meter to credit

    Examples:
      | meter                        |
      | the SMETS1 electricity meter |
      | the SMETS1 gas meter         |
      | the SMETS2 electricity meter |

  @MP134B-R5
  Scenario Outline: A signed command that switches a SMETS2 meter to credit is allowed
    When the SoLR Contingency user sends a signed command to switch <meter> to credit
    Then the request is allowed

    Examples:
      | meter                        | GBCS command                       |
      | the SMETS2 electricity meter | ECS02 set electricity meter credit |
      | the SMETS2 gas meter         | GCS02 set gas meter credit         |

  @MP134B-R5
  Scenario Outline: A signed command that switches a SMETS2 meter to prepayment is refused
    When the SoLR Contingency user sends a signed command to switch <meter> to prepayment
    Then the request is refused because the signed command may only switch the meter to credit

    Examples:
      | meter                        | GBCS command                           |
      | the SMETS2 electricity meter | ECS03 set electricity meter prepayment |
      | the SMETS2 gas meter         | GCS03 set gas meter prepayment         |

  @MP134B-R5
  Scenario: A signed command addressed to a different meter from the request is refused
    When the SoLR Contingency user sends a signed command to switch the SMETS2 electricity meter to credit, addressed inside to the SMETS2 gas meter
    Then the request is refused because the signed command is addressed to a different meter

  @MP134B-R5
  Scenario: A signed command made for another user is refused
    Given an Import Supplier user of Steady Power is registered with the DCC
    When the SoLR Contingency user sends a signed command to switch the SMETS2 electricity meter to credit that was made for the Import Supplier user
    Then the request is refused because the signed command was made for another user

  @MP134B-R5
  Scenario: A signed command already accepted cannot be sent again inside a new request
    Given the SoLR Contingency user has sent a signed command to switch the SMETS2 gas meter to credit
    When the SoLR Contingency user sends the same signed command again, in a new request
    Then the request is refused because the signed command repeats one already accepted

  @MP134B-R5
  Scenario Outline: A signed message that is not a command is refused
    When the SoLR Contingency user sends a signed <message> to the SMETS2 electricity meter instead of a command
    Then the request is refused because the signed message is not a command

    Examples:
      | message  |
      | response |
      | alert    |

  @MP134B-R5
  Scenario: A damaged signed command is refused
    When the SoLR Contingency user sends a signed command to switch the SMETS2 electricity meter to credit that has been cut short
    Then the request is refused because the signed command cannot be read

  @MP134B-R5
  Scenario Outline: A signed command to a SMETS1 meter is refused
    When the SoLR Contingency user sends a signed command to switch <meter> to credit
    Then the request is refused because SMETS1 meters take only service requests

    Examples:
      | meter                        |
      | the SMETS1 electricity meter |
      | the SMETS1 gas meter         |

  @MP134B-R5
  Scenario: As published, the policy trusts nobody to sign commands for the role
    Given the SoLR Contingency policy file is as published
    When the SoLR Contingency user sends a signed command to switch the SMETS2 electricity meter to credit
    Then the request is refused because nobody the policy trusts signed the command

  @MP134B-R5
  Scenario: A command the user signed itself is refused
    When the SoLR Contingency user sends a command to switch the SMETS2 gas meter to credit that it signed itself
    Then the request is refused because nobody the policy trusts signed the command

  @MP134B-R5
  Scenario: A command that only looks signed is refused
    When the SoLR Contingency user sends a command to switch the SMETS2 electricity meter to credit whose signature is all zeros
    Then the request is refused because the signature on the command is not genuine

  @MP134B-R5
  Scenario Outline: A command for one kind of meter sent to the other kind is refused
    When the SoLR Contingency user sends a signed <fuel> meter command to switch <meter> to credit
    Then the request is refused because the command is for the other kind of meter

    Examples:
      | fuel        | meter                        |
      | electricity | the SMETS2 gas meter         |
      | gas         | the SMETS2 electricity meter |
