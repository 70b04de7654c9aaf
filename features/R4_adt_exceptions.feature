@MP134B-R4
Feature: R4 - ADT files with exceptions, as the DCC's anomaly detection has them
  MP134B requirement R4, as the DCC runs anomaly detection (SEC, and modification MP109):
  each User's ADT file holds thresholds and exceptions.

  Why: a SoLR Party knows some meters need different handling: a hospital or a customer on
  medical equipment must never wait in quarantine, and a trial street should go slower
  than the rest. So the ARO names those meters in the signed ADT file, either exempt from
  the thresholds or held to thresholds of their own, and may count in windows shorter than
  an hour. The file's layout is this project's: no public layout of the DCC's file was
  found.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days

  @MP134B-R4
  Scenario: A meter the ADT file names as exempt is never held
    Given Ann (ARO) has submitted an ADT file allowing 1 switch to credit an hour, with the SMETS2 electricity meter exempt
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    When the SoLR Contingency user asks to switch the SMETS2 electricity meter to credit
    Then the request is allowed
    And the request was let through by the exception for the SMETS2 electricity meter

  @MP134B-R4
  Scenario: Meters the exception does not name are still held on the file's threshold
    Given Ann (ARO) has submitted an ADT file allowing 1 switch to credit an hour, with the SMETS2 electricity meter exempt
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    When the SoLR Contingency user asks to switch the SMETS1 gas meter to credit
    Then the request is held in quarantine until an officer decides

  @MP134B-R4
  Scenario: A meter held to a stricter threshold of its own, counted in quarters of an hour
    Given Ann (ARO) has submitted an ADT file allowing 10 switches to credit an hour, with the SMETS2 electricity meter held to 1 every 15 minutes
    And the SoLR Contingency user has switched the SMETS2 electricity meter to credit
    When the SoLR Contingency user asks to switch the SMETS2 electricity meter to credit
    Then the request is held in quarantine until an officer decides
    And a request from the SoLR Contingency user to switch the SMETS1 electricity meter to credit is allowed

  @MP134B-R4
  Scenario: An ADT file counting in a window that does not divide the day is refused
    When Ann (ARO) submits an ADT file allowing 5 switches to credit every 7 minutes
    Then the ADT file is refused because the file counts in a window that does not divide an hour or a day evenly
