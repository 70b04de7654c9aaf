@MP134B-R3
Feature: R3 - The service requests the SoLR Contingency role may send
  MP134B requirement R3: the role may send only SRV 1.6 Update Payment Mode. The list
  of allowed service requests (SRVs) is configurable, so that others can be added
  without code changes.

  Why: switching a failed Supplier's prepayment meters to Credit needs one service
  request and nothing more. Every other service request (topping up, changing tariffs,
  reading data) stays with the customer's Supplier. The list lives in the role's
  policy file, so that if the SEC Panel later allows the role more, the change is an
  edit to that file, reviewed like any other SEC document, and not new software.

  Background:
    Given Failed Energy has failed and SoLR Contingency Services is its SoLR Party
    And SoLR Contingency Services has a registered SoLR Contingency user
    And Ofgem's instruction to act for Failed Energy's customers is in force from yesterday for 30 days

  @MP134B-R3
  Scenario: Update Payment Mode (SRV 1.6), the one service request on the list, is allowed
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit
    Then the request is allowed
    And Update Payment Mode (SRV 1.6) is the only service request on the SoLR Contingency role's list

  @MP134B-R3
  Scenario Outline: Service requests that are not on the list are refused
    When the SoLR Contingency user asks to <request> the SMETS1 electricity meter
    Then the request is refused because the role may not send that service request

    Examples:
      | request                     | SRV                                   |
      | update the meter balance of | 1.5 Update Meter Balance              |
      | read the prepay values of   | 4.3 Read Instantaneous Prepay Values  |

  @MP134B-R3
  Scenario Outline: Update Payment Mode is refused in a form the list does not allow
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit using command variant <variant>
    Then the request is refused because the service request may not be sent in that form

    Examples:
      | variant | meaning                                        |
      | 1       | a non-critical request sent to the meter       |
      | 8       | a request answered by the DCC, not by a meter  |

  @MP134B-R3
  Scenario: An Update Payment Mode request may not carry another service request's content
    When the SoLR Contingency user sends an Update Payment Mode request for the SMETS1 electricity meter that carries a meter balance update
    Then the request is refused because the content does not belong to that service request

  @MP134B-R3
  Scenario: A request whose service reference and service reference variant disagree is refused
    When the SoLR Contingency user asks to switch the SMETS1 electricity meter to credit in a request whose service reference is 1.5 Update Meter Balance
    Then the request is refused because its service reference and service reference variant disagree

  @MP134B-R3
  Scenario: The list is configurable: adding a service request to the policy file allows it, with no code change
    # The lines name the SRV, the forms it may be sent in, its content, and (for R4) how
    # many may be sent an hour and a day when the ARO's threshold file does not say.
    Given the SoLR Contingency policy file gains these lines in its list of allowed service requests:
      """
      "4.3":
        name: Read Instantaneous Prepay Values
        command_variants: [1, 2, 3]
        service_request_body: ReadInstantaneousPrepayValues
        content:
          unconstrained: true
        adt_default:
          per_hour: 100
          per_day: 1000
      """
    When the SoLR Contingency user asks to read the prepay values of the SMETS1 electricity meter
    Then the request is allowed

  @MP134B-R3
  Scenario: Adding a service request to the list leaves the others as they were
    Given the SoLR Contingency policy file gains these lines in its list of allowed service requests:
      """
      "4.3":
        name: Read Instantaneous Prepay Values
        command_variants: [1, 2, 3]
        service_request_body: ReadInstantaneousPrepayValues
        content:
          unconstrained: true
        adt_default:
          per_hour: 100
          per_day: 1000
      """
    When the SoLR Contingency user asks to update the meter balance of the SMETS1 electricity meter
    Then the request is refused because the role may not send that service request
