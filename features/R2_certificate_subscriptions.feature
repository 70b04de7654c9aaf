@MP134B-R2
Feature: R2 - The certificates a SoLR Contingency Party may hold
  MP134B requirement R2: Parties in the SoLR Contingency role may subscribe for XML
  Signing certificates, but never for Digital Signing certificates used to sign Critical
  Commands.

  Why: an XML Signing certificate lets a User sign its requests to the DCC, which the DCC
  then checks before anything reaches a meter. A Supplier's Digital Signing certificate
  would let its holder sign commands that a meter carries out directly, the Critical
  Commands, without the DCC's checks on what the role may do. The role exists to switch
  meters to Credit under those checks, so it must never hold one.

  Two places enforce this:
  - when the Party asks the SMKI for a certificate, the request is checked first: only an
    XML Signing certificate, for one of the Party's own SoLR Contingency users, is allowed;
    anything else is refused by default;
  - in operation, if the DCC's records ever show a Digital Signing certificate for a SoLR
    Contingency user (issued in error, or before these checks), every request from that
    user is refused until the certificate is revoked.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days

  @MP134B-R2
  Scenario: The Party may subscribe for an XML Signing certificate for its SoLR Contingency user
    When SoLR Contingency Services asks the SMKI for an XML Signing certificate for the SoLR Contingency user
    Then the subscription is allowed

  @MP134B-R2
  Scenario: The Party may never subscribe for a Digital Signing certificate used for Critical Commands
    When SoLR Contingency Services asks the SMKI for a Supplier Digital Signing certificate for the SoLR Contingency user
    Then the subscription is refused because the role may never hold a Digital Signing certificate

  @MP134B-R2
  Scenario: A Key Agreement certificate is refused by default
    When SoLR Contingency Services asks the SMKI for a Supplier Key Agreement certificate for the SoLR Contingency user
    Then the subscription is refused because the role may not hold Key Agreement certificates

  @MP134B-R2
  Scenario Outline: A certificate of any other role is refused by default
    When SoLR Contingency Services asks the SMKI for <certificate> for the SoLR Contingency user
    Then the subscription is refused because the role may hold XML Signing certificates only

    Examples:
      | certificate                            |
      | a Network Operator signing certificate |
      | an Access Control Broker certificate   |
      | a DCC XML Signing certificate          |

  @MP134B-R2
  Scenario: A certificate for a user of another Party is refused
    Given an Import Supplier user of Steady Power is registered with the DCC
    When SoLR Contingency Services asks the SMKI for an XML Signing certificate for the Import Supplier user
    Then the subscription is refused because the certificate would be for a user of another Party

  @MP134B-R2
  Scenario Outline: While the DCC's records show a Digital Signing certificate for the user, every request from that user is refused
    Given the DCC's records show a Supplier Digital Signing certificate for the SoLR Contingency user
    When the SoLR Contingency user asks to switch <meter> to credit
    Then the request is refused because the user holds a Digital Signing certificate

    Examples:
      | meter                        |
      | the SMETS1 electricity meter |
      | the SMETS2 gas meter         |

  @MP134B-R2
  Scenario: A signed command from a user with a Digital Signing certificate is refused too
    Given the DCC's records show a Supplier Digital Signing certificate for the SoLR Contingency user
    When the SoLR Contingency user sends a signed command to switch the SMETS2 electricity meter to credit
    Then the request is refused because the user holds a Digital Signing certificate

  @MP134B-R2
  Scenario: Once the Digital Signing certificate is revoked, the user's requests are allowed again
    Given the DCC's records show a Supplier Digital Signing certificate for the SoLR Contingency user
    And that Digital Signing certificate has been revoked
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is allowed
