@MP134B-R1 @MP134B-R3 @MP134B-R4 @MP134B-R5 @MP134B-R6
Feature: What is SEC text and what is this project's reading of it
  MP134B is known from its working-group summary only. Where the engine had to choose
  (the role's code, the allowlist, the ADT rules for the role, cancellations, who signs
  Pre-Commands, the file formats), the specification report says so, beside what public SEC
  text does say, and asks SECAS the open question.

  Why: SECAS must be able to tell a requirement from a choice made to build it, and settle
  each choice, before the role goes live. A reader new to smart metering needs the terms
  explained.

  @MP134B-R1 @MP134B-R3 @MP134B-R4 @MP134B-R5 @MP134B-R6
  Scenario: The report marks each of this project's readings, with its open question
    When the specification report is written for SECAS
    Then it marks the role code, the allowlist, the ADT rules for the role, cancellations, the Pre-Command signers and the file formats as this project's reading
    And each reading is shown beside what SEC text says, with an open question for SECAS

  @MP134B-R1
  Scenario: The report explains its terms
    When the specification report is written for SECAS
    Then it has a glossary explaining SRV, CV, ADT, SRO, ARO, SRP, SMETS, GBCS, Pre-Command and the DUIS codes it uses
