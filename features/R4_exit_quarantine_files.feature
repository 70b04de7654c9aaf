@MP134B-R4
Feature: R4 - Exit Quarantine files: the ARO releases or deletes held requests in bulk
  MP134B requirement R4, as the DCC runs it (SEC, and modification MP109): a request over an
  ADT threshold is quarantined, and the User releases or deletes its quarantined requests by
  sending a separate Exit Quarantine file.

  Why: in a SoLR event a burst can hold hundreds of genuine switches to credit. Releasing
  them one by one is slow and error-prone; a signed file says, for each held request, release
  or delete. It is applied all or nothing, so a file with one mistake changes nothing and
  can be corrected and sent again. Each request is recorded with the file it came in. The
  file's layout is this project's: no public layout of the DCC's file was found.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days
    And Ann (ARO) has submitted an ADT file allowing 1 switch to credit an hour
    And the SoLR Contingency user has sent 4 switches to credit this hour, the last 3 held in quarantine

  @MP134B-R4
  Scenario: One Exit Quarantine file releases two held requests and deletes a third
    When Ann (ARO) sends a signed Exit Quarantine file releasing the first two held requests and deleting the third
    Then the first two held requests are released and allowed, and the third is deleted
    And each of the three is recorded as done by Ann (ARO) under that Exit Quarantine file

  @MP134B-R4
  Scenario: A file naming a request that is not held changes nothing
    When Ann (ARO) sends a signed Exit Quarantine file releasing the first held request and a request that was never held
    Then the Exit Quarantine file is refused because it names a request that is not held
    And the three requests are still held

  @MP134B-R4
  Scenario: Another Party's ARO cannot empty this Party's quarantine
    Given Steady Power has its own SRO and ARO
    When Steady Power's ARO sends a signed Exit Quarantine file releasing the first two held requests and deleting the third
    Then the Exit Quarantine file is refused because it names requests of another Party's Users
    And the three requests are still held
