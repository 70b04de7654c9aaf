@MP134B-R4
Feature: R4 - The SoLR Party's officers and their Anomaly Detection Thresholds
  MP134B requirement R4: the role's Party can create SROs and AROs, who submit ADT
  (Anomaly Detection Threshold) files that let the role send requests to Devices of one
  specific Supplier.

  Why: the SoLR Contingency role can change how many customers pay, all at once. So the
  Party itself must say, in a file signed by a named officer, which failed Supplier's
  meters its user is working on and how many switches it expects to send an hour and a
  day. The DCC's governance registers the Party's Senior Responsible Officer (SRO); the
  SRO appoints Authorised Responsible Officers (AROs); an ARO signs and submits the ADT
  file. Without a current ADT file naming the meter's Supplier, nothing is sent. A burst
  beyond the hourly or daily threshold is not refused but held in quarantine, as the DCC
  does with its own anomaly detection, until an ARO releases or discards it. Every step
  is recorded with the officer who took it.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party, with no SRO or ARO registered yet
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days

  # -- the officers -------------------------------------------------------------------------

  @MP134B-R4
  Scenario: Governance registers the SoLR Party's SRO
    When Alice (governance) registers Sam as the SRO of SoLR Contingency Services
    Then Sam is recorded as the SRO of SoLR Contingency Services, registered by Alice (governance)

  @MP134B-R4
  Scenario: A Party has one SRO at a time
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    When Bob (governance) registers Sid as the SRO of SoLR Contingency Services
    Then the registration is refused because the Party already has an SRO
    And Sid holds no office

  @MP134B-R4
  Scenario: The SRO appoints an ARO
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    When Sam (SRO) appoints Ann as an ARO of SoLR Contingency Services
    Then Ann is recorded as an ARO of SoLR Contingency Services, appointed by Sam (SRO)

  @MP134B-R4
  Scenario: Another Party's SRO cannot appoint an ARO for this Party
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Steady Power has its own SRO and ARO
    When Steady Power's SRO appoints Owen as an ARO of SoLR Contingency Services
    Then the appointment is refused because the officer is an officer of another Party
    And Owen holds no office

  @MP134B-R4
  Scenario: An ARO, of this Party or another, cannot appoint AROs
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Steady Power has its own SRO and ARO
    When Steady Power's ARO appoints Owen as an ARO of SoLR Contingency Services
    Then the appointment is refused because only an SRO may appoint an ARO
    And Owen holds no office

  # -- the ADT file -------------------------------------------------------------------------

  @MP134B-R4
  Scenario: An ARO's signed ADT file lets the role act on the named Supplier's meters
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    When Ann (ARO) submits a signed ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    Then the ADT file is recorded, naming Failed Energy with at most 3 switches to credit an hour and 20 a day, submitted by Ann (ARO)
    And a request from the SoLR Contingency user to switch the SMETS1 electricity meter to credit is allowed

  @MP134B-R4
  Scenario: Without an ADT file, the role can do nothing
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because no ADT file lets the role act for that Supplier's meters

  @MP134B-R4
  Scenario: An ADT file naming another Supplier does not cover the failed Supplier's meters
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Ann (ARO) has submitted a signed ADT file naming Steady Power, with at most 3 switches to credit an hour and 20 a day
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is refused because no ADT file lets the role act for that Supplier's meters

  @MP134B-R4
  Scenario: An ADT file changed after it was signed is refused
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    When Ann (ARO) signs an ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day, and it is changed to 300 an hour before it is submitted
    Then the ADT file is refused because the file was changed after it was signed
    And no ADT file is recorded for the SoLR Contingency user
    And a request from the SoLR Contingency user to switch the SMETS1 electricity meter to credit is refused because no ADT file lets the role act for that Supplier's meters

  @MP134B-R4
  Scenario: An ADT file from an ARO who has been removed is refused
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Sam (SRO) has removed Ann (ARO) from office
    When Ann (ARO) submits a signed ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    Then the ADT file is refused because the ARO has been removed
    And no ADT file is recorded for the SoLR Contingency user

  @MP134B-R4
  Scenario: An ARO's ADT file on behalf of another Party is refused
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    When Ann (ARO) submits a signed ADT file on behalf of Steady Power, naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    Then the ADT file is refused because the file is for a Party other than the ARO's
    And no ADT file is recorded for the SoLR Contingency user

  @MP134B-R4
  Scenario: Another Party's ARO cannot submit an ADT file for this Party
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Steady Power has its own SRO and ARO
    When Steady Power's ARO submits a signed ADT file on behalf of SoLR Contingency Services, naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    Then the ADT file is refused because the file is for a Party other than the ARO's
    And no ADT file is recorded for the SoLR Contingency user

  # -- thresholds and quarantine ------------------------------------------------------------

  @MP134B-R4
  Scenario: A burst over the hourly threshold is held in quarantine, not sent and not lost
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Ann (ARO) has submitted a signed ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    And the SoLR Contingency user has already switched 3 meters to credit this hour
    When the SoLR Contingency user asks to switch the SMETS2 gas meter to credit
    Then the request is held in quarantine until an officer decides

  @MP134B-R4
  Scenario: A burst over the daily threshold is held in quarantine, even within the hourly one
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Ann (ARO) has submitted a signed ADT file naming Failed Energy, with at most 10 switches to credit an hour and 3 a day
    And the SoLR Contingency user has already switched 3 meters to credit this hour
    When the SoLR Contingency user asks to switch the SMETS2 gas meter to credit
    Then the request is held in quarantine until an officer decides
    And it is held for the daily threshold

  @MP134B-R4
  Scenario: The ARO releases a held request, and it is then allowed
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Ann (ARO) has submitted a signed ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    And the SoLR Contingency user has already switched 3 meters to credit this hour
    And the SoLR Contingency user's next request, to switch the SMETS2 gas meter to credit, is held in quarantine
    When Ann (ARO) releases the held request
    Then the request is allowed
    And the held request is recorded as released by Ann (ARO)

  @MP134B-R4
  Scenario: The ARO may discard a held request instead
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Ann (ARO) has submitted a signed ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    And the SoLR Contingency user has already switched 3 meters to credit this hour
    And the SoLR Contingency user's next request, to switch the SMETS2 gas meter to credit, is held in quarantine
    When Ann (ARO) discards the held request
    Then the held request is recorded as discarded by Ann (ARO)
    And a later release of it by Ann (ARO) is refused because the request is no longer held

  @MP134B-R4
  Scenario: Another Party's ARO cannot release a held request
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Ann (ARO) has submitted a signed ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    And Steady Power has its own SRO and ARO
    And the SoLR Contingency user has already switched 3 meters to credit this hour
    And the SoLR Contingency user's next request, to switch the SMETS2 gas meter to credit, is held in quarantine
    When Steady Power's ARO releases the held request
    Then the release is refused because the officer is an officer of another Party
    And the request is still held

  @MP134B-R4
  Scenario: The next hour, requests flow again
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services
    And Sam (SRO) has appointed Ann as an ARO of SoLR Contingency Services
    And Ann (ARO) has submitted a signed ADT file naming Failed Energy, with at most 3 switches to credit an hour and 20 a day
    And the SoLR Contingency user has already switched 3 meters to credit this hour
    And the SoLR Contingency user's next request, to switch the SMETS2 gas meter to credit, is held in quarantine
    And an hour has passed
    When the SoLR Contingency user asks to switch the SMETS2 gas meter to credit
    Then the request is allowed
