@MP134B-R1
Feature: R1 - The SoLR Contingency User Role
  MP134B requirement R1: a new User Role, defined like the roles of the DCC User
  Interface Specification (DUIS). Only Users that the DCC has registered in that role,
  and whose registration is active, may act in it.

  Why: when a Supplier fails, its customers on prepayment meters can be left unable to
  top up. The SoLR Contingency role exists only to switch those meters to Credit, and
  only while Ofgem has instructed it. Because the role can change how customers pay,
  it is a role of its own: no other User, and no User of another role, may borrow it.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days

  @MP134B-R1
  Scenario: A registered SoLR Contingency user is accepted in the role
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is allowed
    And the decision was made under the SoLR Contingency role's policy

  @MP134B-R1
  Scenario: A user the DCC does not know is refused
    Given a user unknown to the DCC holds a valid signing certificate
    When the unknown user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because the user is not known to the DCC

  @MP134B-R1
  Scenario: A user of another role may not send the SoLR Contingency request
    Given an Import Supplier user of Steady Power is registered with the DCC
    When the Import Supplier user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because the user does not hold the SoLR Contingency role

  @MP134B-R1
  Scenario: A request signed by another user in the SoLR Contingency user's name is refused
    Given an Import Supplier user of Steady Power is registered with the DCC
    When the Import Supplier user signs a request to switch the SMETS1 electricity meter to credit that names the SoLR Contingency user as its sender
    Then the request is refused because the user who signed the request is not the user it names as its sender

  @MP134B-R1
  Scenario Outline: A SoLR Contingency user who is no longer active is refused
    Given the SoLR Contingency user has been <status> by the DCC
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because the user is not active

    Examples:
      | status    |
      | suspended |
      | withdrawn |
