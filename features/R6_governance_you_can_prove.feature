@MP134B-R6
Feature: Governance you can prove - signed acts, trusted certificates, a log that shows everything
  MP134B requirements R2, R4 and R6 are only as strong as the governance around them: who
  may act, which certificates are trusted, which instruction is in force.

  Why: anyone at a keyboard could otherwise type an officer's name. So every governance act
  is a statement signed with the acting officer's own key, checked before anything changes,
  applied once, and recorded. Acts that need four eyes carry the signatures of two
  different officers. Certificates are trusted only if an authority that governance added
  (a trust anchor) issued them, or if governance pinned them one by one. Every decision and
  every act is an entry of a log whose state the service signs (a checkpoint) and keeps
  outside its database, so that anyone holding a checkpoint and the log's public key can
  prove an entry is there, and a database that was rolled back is noticed and refused.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party, and no instruction from Ofgem is recorded yet
    And SoLR Contingency Services has a registered SoLR Contingency user
    And the service keeps a signed log

  @MP134B-R6
  Scenario: An instruction signed by one officer and approved by another comes into force
    When Alice (governance) signs a proposal of Ofgem's instruction for Failed Energy
    And Bob (governance) signs its approval
    Then the instruction is in force
    And the log holds both signed statements

  @MP134B-R6
  Scenario: An approval typed in another officer's name is refused
    Given Alice (governance) has signed a proposal of Ofgem's instruction for Failed Energy
    When Alice (governance) signs its approval in Bob's name
    Then the act is refused because the officer it names did not sign it
    And the instruction is not in force

  @MP134B-R6
  Scenario: An officer cannot give herself a second name to approve her own proposal
    When Alice (governance) alone signs the registration of another governance officer
    Then the act is refused because two governance officers must sign it

  @MP134B-R6
  Scenario: The same signed statement cannot be applied twice
    Given Alice (governance) has signed a proposal of Ofgem's instruction for Failed Energy
    When the same signed proposal is submitted again
    Then the act is refused because it was already applied

  @MP134B-R4
  Scenario: An SRO and an ARO may not share a key
    Given Alice (governance) has registered Sam as the SRO of SoLR Contingency Services by signed act
    When Sam (SRO) signs the appointment of an ARO who would hold Sam's own key
    Then the act is refused because the key is already another officer's

  @MP134B-R2
  Scenario: A certificate from an authority governance trusts is imported
    Given two governance officers have signed the addition of the SMKI Organisation CA as a trust anchor
    When a certificate that the SMKI Organisation CA issued is imported
    Then it is imported

  @MP134B-R2
  Scenario: A certificate from a look-alike authority with the same name is not imported
    Given two governance officers have signed the addition of the SMKI Organisation CA as a trust anchor
    When a certificate that a look-alike authority with the same name issued is imported
    Then it is refused because no trust anchor issued it

  @MP134B-R2
  Scenario: A governance officer may pin a certificate of a test authority with no published CA
    When Alice (governance) signs a pin of a test certificate
    Then the certificate is shown as pinned

  @MP134B-R6
  Scenario: Any decision can be proved to be in the log by an auditor who holds only a checkpoint
    Given Alice (governance) and Bob (governance) have signed Ofgem's instruction for Failed Energy into force
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    When the service signs a checkpoint of its log
    Then an auditor with that checkpoint and the log's public key can prove the decision is in the log

  @MP134B-R6
  Scenario: A database rolled back behind its checkpoint decides nothing
    Given Alice (governance) and Bob (governance) have signed Ofgem's instruction for Failed Energy into force
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    And the service has signed a checkpoint of its log
    When the newest entries are removed from the database
    Then a request to switch the SMETS1 gas meter to credit is refused because the database is behind its checkpoint

  @MP134B-R6
  Scenario: Once two officers sign a recovery, the rolled-back database decides again
    Given Alice (governance) and Bob (governance) have signed Ofgem's instruction for Failed Energy into force
    And the SoLR Contingency user has switched the SMETS1 electricity meter to credit
    And the service has signed a checkpoint of its log
    And the newest entries have been removed from the database
    And a request to switch the SMETS1 gas meter to credit has been refused because the database is behind its checkpoint
    When Alice (governance) and Bob (governance) sign a recovery of the log
    Then a request to switch the SMETS1 gas meter to credit is allowed
